from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

from support.outbound import contract_keys
from support.paths import ROOT
from support.servers import clean_env, free_port, spawn, stop_process

EXAMPLE = ROOT / "examples" / "embed_cli_console.py"


def test_the_embedding_example_wraps_a_cli_console_in_cli_mode(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    state = tmp_path / "state"
    with open(tmp_path / "example.log", "wb") as log:
        proc = spawn(
            [sys.executable, str(EXAMPLE), "--port", str(port), "--state-dir", str(state)],
            env=clean_env(tmp_path),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if httpx.get(base + "/_telemetry/v1/status").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "example.log").read_text()
            time.sleep(0.05)
        assert contract_keys(httpx.get(base + "/_telemetry/v1/status").json()) == {
            "enabled": True,
            "mode": "cli",
            "upload": False,
            "test_events": "kept",
        }
        page = httpx.get(base + "/console/data/mydb/schema/public")
        assert (page.status_code, page.text.startswith("<!doctype html><title>my CLI's console</title>")) == (200, True)
        batch = {
            "events": [
                {
                    "type": "Data/SET_TABLE",
                    "route": "/console/data/mydb/schema/public/tables/users/browse",
                    "cli_uuid": "not-from-the-browser",
                }
            ]
        }
        response = httpx.post(base + "/_telemetry/v1/events", json=batch)
        assert (response.status_code, response.json()) == (202, {"accepted": 1, "dropped": 0})
    finally:
        stop_process(proc)
    cli_uuid = json.loads((tmp_path / ".hasura" / "config.json").read_text())["uuid"]
    [line] = (state / "events.jsonl").read_text().splitlines()
    [event] = json.loads(line)["data"]
    assert (event["url"], event["console_mode"], event["cli_uuid"], event["server_uuid"]) == (
        "/data/SOURCE/schema/SCHEMA/tables/TABLE/browse",
        "cli",
        cli_uuid,
        None,
    )

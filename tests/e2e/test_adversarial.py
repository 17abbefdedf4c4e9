"""Adversarial regressions: ways a hostile or careless browser tried to get text out, or the server down.

Each test here failed before the fix committed with it, against a real `console-proxy serve`.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import websockets.exceptions
import websockets.sync.client

from support.servers import clean_env, free_port, serving, start_serve

SERVER_UUID = "11111111-2222-4333-8444-555555555555"
CANARY = "qzvkwcanary"


def test_websocket_handshakes_do_not_write_their_path_or_query_to_the_log(tmp_path: Path) -> None:
    # uvicorn logs every WebSocket handshake with its path and query string even without an access log.
    with serving(tmp_path, "--state-dir", str(tmp_path / "state"), "--server-uuid", SERVER_UUID) as served:
        ws_base = served.base.replace("http://", "ws://")
        with websockets.sync.client.connect(f"{ws_base}/_telemetry/v1/ws?db={CANARY}") as ws:
            ws.send('{"events": [{"type": "A/B", "route": "/console/data/x"}]}')
            assert ws.recv(timeout=10) == '{"accepted":1,"dropped":0}'
        for path in (f"/console/data/{CANARY}/schema/public?row={CANARY}", f"/_telemetry/v1/ws/{CANARY}"):
            with contextlib.suppress(websockets.exceptions.InvalidStatus):
                websockets.sync.client.connect(ws_base + path).close()
    assert "Application shutdown complete." in served.output()
    assert CANARY not in served.output()


def test_a_client_stalled_mid_body_does_not_hold_up_sigterm(tmp_path: Path) -> None:
    # uvicorn waits for every open request before the lifespan shutdown; a body that never ends held it forever.
    served = start_serve(tmp_path, "--state-dir", str(tmp_path / "state"), "--shutdown-grace-s", "1")
    host, port = served.base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as stalled:
        stalled.sendall(
            b"POST /_telemetry/v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n["
        )
        accepted = httpx.post(served.base + "/_telemetry/v1/events", json=[{"type": "A/B", "route": "/console/data/x"}])
        assert accepted.status_code == 202
        code = served.stop(signal.SIGTERM)
    assert code == 0
    assert "Application shutdown complete." in served.output()
    assert len((tmp_path / "state" / "events.jsonl").read_text().splitlines()) == 1


# The browser's server_version is used when the proxy knows none: its pre-release label must not carry text.
BROWSER_VERSIONS = [
    ("v2.40.0", "v2.40.0"),
    ("v2.40.0-beta.1", "v2.40.0-beta.1"),
    ("v2.0.0-alpha.12", "v2.0.0-alpha.12"),
    ("v2.36.0-rc.2", "v2.36.0-rc.2"),
    ("v2.40.0-ce", "v2.40.0-ce"),
    ("v2.40.0-cloud.3", "v2.40.0-cloud.3"),
    ("v2.40.0-" + CANARY, None),
    ("v2.40.0-beta." + CANARY, None),
    ("v2.40.0-prodcustomersdb", None),
    ("v2.40.0-beta.1.usuarios", None),
]


def test_a_browser_server_version_cannot_carry_a_name(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with serving(tmp_path, "--state-dir", str(state), "--server-uuid", SERVER_UUID) as served:
        for version, _ in BROWSER_VERSIONS:
            batch = {"events": [{"type": "A/B", "route": "/console/data/x"}], "server_version": version}
            assert httpx.post(served.base + "/_telemetry/v1/events", json=batch).status_code == 202
        recent = httpx.get(served.base + "/_telemetry/v1/recent").json()
    kept = [json.loads(line)["data"][0]["server_version"] for line in (state / "events.jsonl").read_text().splitlines()]
    assert kept == [expected for _, expected in BROWSER_VERSIONS]
    assert [event["server_version"] for event in recent] == kept


def test_status_reads_a_closed_spool_without_creating_files_beside_it(tmp_path: Path) -> None:
    # mode=ro still made SQLite create spool.db-wal and spool.db-shm: as another user (sudo), files the proxy
    # can then not open. And the path went into a file: URI unquoted, so a '#' or '?' in it opened (and created)
    # another file, read-write.
    state = tmp_path / "state #1?x"
    upstream = f"http://127.0.0.1:{free_port()}/v1/collect"  # nobody listens: the events stay spooled
    with serving(tmp_path, "--state-dir", str(state), "--upstream", upstream, "--shutdown-grace-s", "0.2") as served:
        batch = [{"type": "A/B", "route": "/console/data/x"}] * 2
        assert httpx.post(served.base + "/_telemetry/v1/events", json=batch).status_code == 202
    before = sorted(p.name for p in state.iterdir())
    assert before == ["spool.db", "spool.db.lock"]
    status = subprocess.run(
        [sys.executable, "-m", "console_proxy", "status", "--state-dir", str(state), "--upstream", upstream],
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "spool: 2 events, " in status.stdout
    assert sorted(p.name for p in state.iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["serve.log", "state #1?x"]

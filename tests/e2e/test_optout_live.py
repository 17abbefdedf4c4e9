"""An opt-out written to the CLI's config while `console-proxy serve` runs takes effect at once, and so does the
opt-in after it: on SIGHUP, and when the file changes. A real server, a real collector, a real spool file."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets.sync.client
from click.testing import CliRunner

from console_proxy.cli.main import main

from support.collector import Answer, Collector
from support.servers import ServeProcess, clean_env, start_serve

EVENTS = "/_telemetry/v1/events"
STATUS = "/_telemetry/v1/status"
WS = "/_telemetry/v1/ws"
FAST = ("--batch-max-events", "20", "--batch-max-delay-s", "0.05", "--retry-base-s", "0.05", "--retry-cap-s", "0.2")
BATCH = [{"type": "Data/SET_TABLE", "route": "/console/data"}] * 3
# Long enough for several of the forwarder's retries (at most --retry-cap-s apart) to have happened.
QUIET_S = 1.5


@pytest.fixture
def collector() -> Iterator[Collector]:
    with Collector() as c:
        yield c


def wait_until(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def set_telemetry(config: Path, value: Any) -> None:
    document = json.loads(config.read_text()) if config.exists() else {}
    document["enable_telemetry"] = value
    config.write_text(json.dumps(document))


# The contract's keys of /status, and the setting that decided.
KEYS = ("enabled", "mode", "upload", "test_events", "decided_by")


def status(base: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(base + STATUS).json()
    return {key: body[key] for key in KEYS}


def answers(base: str) -> dict[str, Any]:
    """What a client is told now: a POST's status, a WebSocket message's answer (None: ignored), /status, /readyz."""
    post = httpx.post(base + EVENTS, json=BATCH).status_code
    with websockets.sync.client.connect(base.replace("http://", "ws://") + WS) as ws:
        ws.send(json.dumps(BATCH))
        try:
            message: str | None = str(ws.recv(timeout=1.0))
        except TimeoutError:
            message = None
    ready = httpx.get(base + "/readyz").status_code
    return {"post": post, "ws": message, "status": status(base), "readyz": ready}


def serve(tmp_path: Path, config: Path, collector: Collector) -> ServeProcess:
    args = ("--mode", "cli", "--cli-config", str(config), "--upstream", collector.url)
    return start_serve(tmp_path, *args, "--state-dir", str(tmp_path / "state"), *FAST)


def queued(tmp_path: Path, config: Path, collector: Collector) -> list[str]:
    args = ["status", "--mode", "cli", "--cli-config", str(config), "--upstream", collector.url]
    result = CliRunner().invoke(main, [*args, "--state-dir", str(tmp_path / "state")], env=clean_env(tmp_path))
    assert result.exit_code == 0, result.output
    return [line for line in result.output.splitlines() if line.startswith(("enabled:", "spool:"))]


@pytest.mark.parametrize("trigger", ["SIGHUP", "the file changed"])
def test_turning_telemetry_off_and_on_while_serving_takes_effect_at_once(
    tmp_path: Path, collector: Collector, trigger: str
) -> None:
    config = tmp_path / "hasura" / "config.json"
    config.parent.mkdir()
    set_telemetry(config, True)
    collector.default = Answer(503)  # the collector is down for now: what is accepted stays queued
    served = serve(tmp_path, config, collector)
    try:
        on = answers(served.base)
        wait_until(lambda: len(collector.requests) > 0)  # the forwarder is trying

        set_telemetry(config, False)
        if trigger == "SIGHUP":
            served.send_signal(signal.SIGHUP)
        wait_until(lambda: status(served.base)["enabled"] is False)
        connections = collector.connections
        collector.default = Answer(200)
        off = answers(served.base)
        time.sleep(QUIET_S)  # an absence cannot be waited for: a window several retries long
        assert collector.connections == connections and collector.delivered_events() == []
        held = queued(tmp_path, config, collector)

        set_telemetry(config, True)
        if trigger == "SIGHUP":
            served.send_signal(signal.SIGHUP)
        wait_until(lambda: status(served.base)["enabled"] is True)
        again = answers(served.base)
        delivered = collector.wait_for_events(12)
    finally:
        code = served.stop()
    print(f"{trigger}: before {on}\n  off {off}\n  on again {again}\n  status while off: {held}")
    decided_by = f"enable_telemetry in {config}"
    assert on == {
        "post": 202,
        "ws": '{"accepted":3,"dropped":0}',
        "status": {"enabled": True, "mode": "cli", "upload": True, "test_events": "kept", "decided_by": decided_by},
        "readyz": 200,
    }
    assert off == {
        "post": 204,
        "ws": None,
        "status": {"enabled": False, "mode": "cli", "upload": False, "test_events": "kept", "decided_by": decided_by},
        "readyz": 200,
    }
    assert again == on
    # The 6 events kept before stayed in the spool, unsent, and went once telemetry was on again, with 6 new ones.
    assert held == [
        "enabled: no",
        f"spool: 6 events kept in {tmp_path / 'state' / 'spool.db'}, not sent while telemetry is off; sent when it"
        " is on again, unless older than --spool-max-age-s by then",
    ]
    assert len(delivered) == 12 and len({e["event_id"] for e in delivered}) == 12
    assert code == 0
    output = served.output()
    assert output.count("telemetry: off, decided by enable_telemetry in") == 1
    assert output.count("telemetry: on again, decided by enable_telemetry in") == 1
    assert "Traceback" not in output


def test_an_unreadable_cli_config_while_serving_turns_telemetry_off(tmp_path: Path, collector: Collector) -> None:
    config = tmp_path / "hasura" / "config.json"
    config.parent.mkdir()
    set_telemetry(config, True)
    served = serve(tmp_path, config, collector)
    try:
        assert httpx.post(served.base + EVENTS, json=BATCH).status_code == 202
        set_telemetry(config, "perhaps")
        wait_until(lambda: status(served.base)["enabled"] is False)
        assert httpx.post(served.base + EVENTS, json=BATCH).status_code == 204
    finally:
        assert served.stop() == 0
    assert "enable_telemetry in " in served.output() and 'is "perhaps"; expected one of' in served.output()

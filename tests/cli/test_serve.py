from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import websockets.exceptions
import websockets.sync.client

from console_proxy.server.config import (
    NO_WEBSOCKET,
    WS_MAX_MESSAGE_BYTES,
)

from support.servers import clean_env, serving, start_serve

SERVER_UUID = "11111111-2222-4333-8444-555555555555"
EVENTS = "/_telemetry/v1/events"
RULES_V1 = "version: 1\nprefixes: [/console]\nroutes:\n  - /a/{X}\n"
RULES_V2 = "version: 1\nprefixes: [/console]\nroutes:\n  - /a/{X}\n  - /b/{Y}\n"


def wait_for(served_output: Callable[[], str], text: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in served_output():
        assert time.monotonic() < deadline, f"{text!r} never appeared in:\n{served_output()}"
        time.sleep(0.05)


def test_serve_starts_serves_the_console_accepts_a_batch_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    state = tmp_path / "state"
    served = start_serve(tmp_path, "--state-dir", str(state), "--server-uuid", SERVER_UUID)
    try:
        console = httpx.get(served.base + "/console", follow_redirects=True)
        assert (console.status_code, console.url.path, console.headers["content-type"]) == (
            200,
            "/console/",
            "text/html; charset=utf-8",
        )
        deep = httpx.get(served.base + "/console/data/db/schema/public/tables/users/browse")
        assert (deep.status_code, deep.text) == (200, console.text)
        response = httpx.post(served.base + EVENTS, json=[{"type": "A/B", "route": "/console/data/secretdb"}])
        assert (response.status_code, response.json()) == (202, {"accepted": 1, "dropped": 0})
    finally:
        code = served.stop(signal.SIGTERM)
    assert code == 0
    [line] = (state / "events.jsonl").read_text().splitlines()
    [event] = json.loads(line)["data"]
    assert (event["url"], event["server_uuid"]) == ("/data/SOURCE", SERVER_UUID)
    output = served.output()
    port = served.base.rsplit(":", 1)[1]
    for expected in [
        f"console-proxy 0.2.0: the console is at http://127.0.0.1:{port}/console/ (files from ",
        "telemetry: on, decided by default (nothing set); mode server",
        f"local mode: accepted events are appended to {state / 'events.jsonl'}; nothing leaves this machine",
        "Application shutdown complete.",
    ]:
        assert expected in output
    assert "secretdb" not in output


def test_serve_says_why_telemetry_is_off(tmp_path: Path) -> None:
    with serving(tmp_path, "--state-dir", str(tmp_path / "state"), env={"DO_NOT_TRACK": "1"}) as served:
        assert httpx.post(served.base + EVENTS, json=[{"type": "A/B", "route": "/"}]).status_code == 204
    assert "telemetry: off, decided by DO_NOT_TRACK=1: nothing is kept and nothing is sent" in served.output()
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "99999"], '--port is "99999"; expected a whole number from 0 to 65535.\n'),
        (
            ["--enable-telemetry", "maybe"],
            '--enable-telemetry is "maybe"; expected one of true, t, yes, y, 1, false, f, no, n, 0.\n',
        ),
    ],
)
def test_bad_settings_exit_2_with_one_sentence(tmp_path: Path, args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "console_proxy", "serve", *args],
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (result.returncode, result.stdout, result.stderr) == (2, "", message)


def test_an_empty_enable_telemetry_flag_does_not_undo_the_variable(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "console_proxy", "serve", "--enable-telemetry", ""],
        env=clean_env(tmp_path, {"CONSOLE_PROXY_ENABLE_TELEMETRY": "false"}),
        capture_output=True,
        text=True,
        timeout=30,
    )
    expected = '--enable-telemetry is ""; expected one of true, t, yes, y, 1, false, f, no, n, 0.\n'
    assert (result.returncode, result.stdout, result.stderr) == (2, "", expected)


def test_an_unwritable_state_dir_exits_2_with_one_sentence(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    state = tmp_path / "a-file" / "state"
    result = subprocess.run(
        [sys.executable, "-m", "console_proxy", "serve", "--state-dir", str(state)],
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=30,
    )
    expected = (
        f'the state directory "{state}" is not writable (Not a directory); '
        "expected a directory this user can create and write (--state-dir).\n"
    )
    assert (result.returncode, result.stdout, result.stderr) == (2, "", expected)


def test_a_bad_rules_file_exits_3_with_file_line_col(tmp_path: Path) -> None:
    rules = tmp_path / "bad.yaml"
    rules.write_text("version: 1\nroutes: [\n")
    result = subprocess.run(
        [sys.executable, "-m", "console_proxy", "serve", "--rules", str(rules)],
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (result.returncode, result.stdout) == (3, "")
    assert result.stderr.startswith(f"{rules}:3:1: ")


def anonymized(base: str, route: str) -> str:
    response = httpx.post(base + EVENTS, json=[{"type": "A/B", "route": route}])
    assert response.status_code == 202
    url: str = httpx.get(base + "/_telemetry/v1/recent").json()[-1]["url"]
    return url


def test_sighup_reloads_the_rules_and_a_bad_file_keeps_the_old_ones(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES_V1)
    with serving(tmp_path, "--rules", str(rules), "--state-dir", str(tmp_path / "state")) as served:
        assert anonymized(served.base, "/console/b/secret") == "/UNKNOWN"
        rules.write_text(RULES_V2)
        served.send_signal(signal.SIGHUP)
        wait_for(served.output, "rules reloaded (SIGHUP)")
        assert anonymized(served.base, "/console/b/secret") == "/b/Y"
        rules.write_text("version: 1\nroutes: [\n")
        served.send_signal(signal.SIGHUP)
        wait_for(served.output, f"rules reload (SIGHUP) refused, keeping the previous rules:\n{rules}:3:1: ")
        assert anonymized(served.base, "/console/b/secret") == "/b/Y"
        assert httpx.get(served.base + "/readyz").status_code == 200
        assert served.stop() == 0


def test_serve_takes_websocket_batches_drops_an_oversized_one_and_refuses_one_over_the_frame_limit(
    tmp_path: Path,
) -> None:
    with serving(tmp_path, "--state-dir", str(tmp_path / "state")) as served:
        url = served.base.replace("http://", "ws://") + "/_telemetry/v1/ws"
        message = json.dumps({"topic": "console", "data": {"event_type": "A/B", "url": "/console/data/x"}})
        with websockets.sync.client.connect(url, max_size=None) as ws:
            ws.send(message)
            assert json.loads(ws.recv(timeout=5)) == {"accepted": 1, "dropped": 0}
            # Over the batch limit: read, dropped, counted, and the socket stays open for the next message.
            ws.send("[" + " " * 200_000 + "]")
            assert json.loads(ws.recv(timeout=5)) == {"error": "body too large"}
            ws.send(message)
            assert json.loads(ws.recv(timeout=5)) == {"accepted": 1, "dropped": 0}
        # Over what the server reads at all: refused by the WebSocket layer before it is read whole.
        with websockets.sync.client.connect(url, max_size=None) as ws:
            ws.send("[" + " " * WS_MAX_MESSAGE_BYTES + "]")
            with pytest.raises(websockets.exceptions.ConnectionClosedError) as closed:
                ws.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        metrics = httpx.get(served.base + "/metrics").text
        assert 'console_proxy_batches_rejected_total{reason="body_too_large",source="console"} 1.0' in metrics
        assert served.stop() == 0


def test_without_a_websocket_library_start_up_says_so_and_readyz_is_not_ready(tmp_path: Path) -> None:
    # Modules that fail to import stand in for an environment where neither library is installed.
    hidden = tmp_path / "hidden"
    for name in ("websockets", "wsproto"):
        (hidden / name).mkdir(parents=True)
        (hidden / name / "__init__.py").write_text("raise ImportError('not installed here')\n")
    with serving(tmp_path, "--state-dir", str(tmp_path / "state"), env={"PYTHONPATH": str(hidden)}) as served:
        wait_for(served.output, NO_WEBSOCKET)
        assert served.output().count(NO_WEBSOCKET) == 1
        ready = httpx.get(served.base + "/readyz")
        assert (ready.status_code, ready.json()) == (503, {"status": "not ready", "reason": "no WebSocket support"})
        assert httpx.get(served.base + "/healthz").status_code == 200
        # What the console meets: uvicorn passes the upgrade on as a plain request, which the middleware refuses.
        url = served.base.replace("http://", "ws://") + "/_telemetry/v1/ws"
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            websockets.sync.client.connect(url, open_timeout=5)
        assert refused.value.response.status_code == 501
        assert served.stop() == 0


def run_serve(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console_proxy", "serve", *args],
        env=clean_env(tmp_path, env),
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_check_validates_everything_and_exits_without_serving(tmp_path: Path) -> None:
    state = tmp_path / "state"
    config = tmp_path / "cp.yaml"
    config.write_text(f"state-dir: {state}\nserver-uuid: {SERVER_UUID}\n", encoding="utf-8")
    result = run_serve(tmp_path, "--config", str(config), "--check")
    assert (result.returncode, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    assert lines[0] == "settings: ok (telemetry on, decided by default (nothing set))"
    assert lines[1].startswith("rules: ok, ") and lines[1].endswith("route_rules.yaml (193 templates)")
    assert lines[2:] == [f"state directory: ok, {state} is writable"]
    assert not (state / "events.jsonl").exists()


@pytest.mark.parametrize(
    ("text", "code", "message"),
    [
        (
            "upstrem: https://c.example/\n",
            2,
            ':1:1: "upstrem" is not a console-proxy setting; did you mean "upstream"?',
        ),
        ("port: 99999\n", 2, ":1:1: port is 99999; expected a whole number from 0 to 65535."),
    ],
)
def test_check_of_a_bad_config_file_is_one_sentence(tmp_path: Path, text: str, code: int, message: str) -> None:
    config = tmp_path / "cp.yaml"
    config.write_text(text, encoding="utf-8")
    result = run_serve(tmp_path, "--check", env={"CONSOLE_PROXY_CONFIG": str(config)})
    assert (result.returncode, result.stdout, result.stderr) == (code, "", f"{config}{message}\n")


def test_check_of_bad_rules_exits_3(tmp_path: Path) -> None:
    rules = tmp_path / "bad.yaml"
    rules.write_text("version: 1\nroutes: [\n")
    result = run_serve(tmp_path, "--check", "--rules", str(rules))
    assert (result.returncode, result.stdout) == (3, "")


def test_check_warns_when_no_installation_id_will_be_attached(tmp_path: Path) -> None:
    result = run_serve(tmp_path, "--check", "--state-dir", str(tmp_path / "s"))
    assert result.returncode == 0
    assert result.stdout.splitlines()[-1] == (
        "warning: no installation ID will be attached: every event carries server_uuid null; give --server-uuid UUID,"
        " or --hasura-endpoint URL (with --admin-secret) so that the Hasura server is asked for its ID"
    )


def test_a_second_server_on_one_events_file_refuses_in_one_sentence(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with serving(tmp_path, "--state-dir", str(state), "--server-uuid", SERVER_UUID) as first:
        second = run_serve(tmp_path, "--state-dir", str(state), "--server-uuid", SERVER_UUID, "--port", "0")
        pid = first.proc.pid
    assert (second.returncode, second.stdout) == (1, "")
    assert second.stderr == (
        f"another console-proxy (pid {pid}) is writing {state / 'events.jsonl'}; stop it, or give this one another"
        " --state-dir.\n"
    )


def test_json_logs_are_one_object_a_line(tmp_path: Path) -> None:
    with serving(tmp_path, "--state-dir", str(tmp_path / "s"), "--log-format", "json") as served:
        assert (
            httpx.post(
                served.base + EVENTS, json=[{"type": "A/B", "route": "/"}], headers={"origin": "http://x.example"}
            ).status_code
            == 403
        )
        wait_for(served.output, "refused a batch: foreign_origin")
    records = [json.loads(line) for line in served.output().splitlines()]
    assert all(set(r) == {"time", "level", "logger", "pid", "message"} for r in records)
    assert all(r["time"].endswith("Z") and r["time"][10] == "T" for r in records)
    by_message = {r["message"]: r for r in records}
    assert by_message["refused a batch: foreign_origin"]["level"] == "WARNING"
    assert any(m.startswith("telemetry: on, decided by default") for m in by_message)
    assert any(r["logger"] == "uvicorn.error" and r["message"] == "Application startup complete." for r in records)

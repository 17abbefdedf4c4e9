"""`console-proxy hasura -- ARGS...` around a stand-in Hasura CLI (support.hasura_cli) that refuses to run with its
own telemetry on: what passes through untouched, what the gate records, and that a gate that is down or hangs
changes nothing about the command."""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from console_proxy.hasura.cli_command import go_arch

from support import hasura_cli
from support.browser import OUTPUT
from support.fake_hasura import closed_port_url
from support.servers import clean_env, serving, spawn

SERVER_UUID = "11111111-2222-4333-8444-555555555555"
WRAPPER = [sys.executable, "-m", "console_proxy", "hasura"]
SECRETS = ["secret.example", "s3cret", "prod_db", "add_customer_email"]
ARRIVAL_TIMEOUT_S = 20.0


def wrapper_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return clean_env(tmp_path, {"STANDIN_LOG": str(tmp_path / "standin.log"), **extra})


def run(tmp_path: Path, gate: str, *args: str, stdin: str = "", **extra: str) -> subprocess.CompletedProcess[str]:
    cli = hasura_cli.install(tmp_path / "bin")
    return subprocess.run(
        [*WRAPPER, "--gate", gate, "--hasura-bin", str(cli), "--", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=wrapper_env(tmp_path, **extra),
        timeout=60,
        check=False,
    )


def standin_runs(tmp_path: Path) -> list[dict[str, Any]]:
    log = tmp_path / "standin.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def kept(state: Path, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + ARRIVAL_TIMEOUT_S
    path = state / "events.jsonl"
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        events = [event for line in lines for event in json.loads(line)["data"]]
        if len(events) >= count or time.monotonic() > deadline:
            return events
        time.sleep(0.05)


def test_output_stdin_and_exit_status_pass_and_the_command_is_kept_by_name_only(tmp_path: Path) -> None:
    state = tmp_path / "state"
    args = ["migrate", "apply", "--endpoint", "https://secret.example", "--admin-secret=s3cret"]
    args += ["--database-name", "prod_db"]
    with serving(tmp_path, "--state-dir", str(state), "--server-uuid", SERVER_UUID) as gate:
        done = run(tmp_path, gate.base, *args, stdin="line one\nline two\n")
        events = kept(state, 1)
        created = run(tmp_path, gate.base, "migrate", "create", "add_customer_email", "--from-server", STANDIN_EXIT="0")
        events = kept(state, 2)
    assert (done.returncode, done.stdout) == (3, "stdin:line one\nline two\n")
    assert done.stderr == "args: " + " ".join(args) + "\n"
    assert created.returncode == 0
    machine = {"os_platform": platform.system().lower(), "os_arch": go_arch(), "cli_version": hasura_cli.VERSION}
    assert [{k: e[k] for k in ("command", "flags", "is_error", *machine)} for e in events] == [
        {"command": "hasura migrate apply", "flags": ["admin-secret", "database-name", "endpoint"], "is_error": True}
        | machine,
        {"command": "hasura migrate create", "flags": ["from-server"], "is_error": False} | machine,
    ]
    text = (state / "events.jsonl").read_text()
    assert [secret for secret in SECRETS if secret in text] == []
    runs = standin_runs(tmp_path)
    # The command itself, then `hasura version` (asked from /, outside any project), every one with telemetry off.
    assert [(r["args"][:1], r["telemetry"]) for r in runs] == [
        (["migrate"], "false"),
        (["version"], "false"),
        (["migrate"], "false"),
        (["version"], "false"),
    ]
    assert runs[1]["cwd"] == "/"


def test_the_cli_refuses_to_run_with_its_telemetry_on_so_the_wrapper_really_turns_it_off(tmp_path: Path) -> None:
    cli = hasura_cli.install(tmp_path / "bin")
    direct = subprocess.run([str(cli), "version"], capture_output=True, text=True, env=clean_env(tmp_path), check=False)
    wrapped = run(tmp_path, closed_port_url(), "version", HASURA_GRAPHQL_ENABLE_TELEMETRY="true")
    assert (direct.returncode, direct.stderr) == (
        hasura_cli.TELEMETRY_OFF_EXIT,
        "stand-in hasura: my telemetry is on\n",
    )
    assert (wrapped.returncode, wrapped.stdout.split()[-1]) == (0, f"version={hasura_cli.VERSION}")


def start_wrapped(tmp_path: Path, *args: str) -> subprocess.Popen[bytes]:
    cli = hasura_cli.install(tmp_path / "bin")
    proc = spawn(
        [*WRAPPER, "--gate", closed_port_url(), "--hasura-bin", str(cli), "--", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=wrapper_env(tmp_path),
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    return proc


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_sent_to_the_wrapper_reaches_the_cli_and_its_death_is_the_wrappers(
    tmp_path: Path, signum: signal.Signals
) -> None:
    proc = start_wrapped(tmp_path, "hold")
    proc.send_signal(signum)
    proc.communicate(timeout=30)
    assert proc.returncode == -signum


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_cli_that_handles_the_signal_exits_as_it_chooses(tmp_path: Path, signum: signal.Signals) -> None:
    proc = start_wrapped(tmp_path, "trap")
    proc.send_signal(signum)
    out, _ = proc.communicate(timeout=30)
    assert (proc.returncode, out) == (7, f"got {int(signum)}\n".encode())


class HangingGate:
    """A gate that takes the connection and never answers: when did the post give up (its client closed)?"""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.closed_at: float | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            while conn.recv(65536):
                pass
        self.closed_at = time.monotonic()

    def close(self) -> None:
        self.thread.join(30)
        self.sock.close()


def timed(tmp_path: Path, gate: str) -> tuple[float, int]:
    started = time.monotonic()
    done = run(tmp_path, gate, "version")
    return time.monotonic() - started, done.returncode


def test_a_gate_that_is_down_or_hangs_delays_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with serving(tmp_path, "--state-dir", str(state), "--server-uuid", SERVER_UUID) as gate:
        up = [timed(tmp_path, gate.base) for _ in range(3)]
        kept(state, 3)
    down = [timed(tmp_path, closed_port_url()) for _ in range(3)]
    hanging = HangingGate()
    try:
        hung = timed(tmp_path, hanging.url)
        exited_at = time.monotonic()
    finally:
        hanging.close()
    assert [code for _, code in [*up, *down, hung]] == [0] * 7
    # The wrapper had exited while its detached post still waited on the hanging gate.
    assert hanging.closed_at is not None and exited_at < hanging.closed_at
    OUTPUT.mkdir(exist_ok=True)
    figures = {"gate_up_s": [round(s, 3) for s, _ in up], "gate_down_s": [round(s, 3) for s, _ in down]}
    figures["gate_hanging_s"] = [round(hung[0], 3)]
    (OUTPUT / "hasura-wrapper-timings.json").write_text(json.dumps(figures) + "\n")


def test_a_missing_cli_is_one_sentence_and_exit_127(tmp_path: Path) -> None:
    done = subprocess.run(
        [*WRAPPER, "--hasura-bin", str(tmp_path / "nowhere"), "--", "version"],
        capture_output=True,
        text=True,
        env=clean_env(tmp_path),
        check=False,
    )
    assert (done.returncode, done.stdout) == (127, "")
    assert (
        done.stderr
        == f"console-proxy hasura: {str(tmp_path / 'nowhere')!r} was not found; give the real CLI with --hasura-bin.\n"
    )


def test_a_bad_gate_url_exits_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [*WRAPPER, "--gate", "localhost:9695", "--", "version"], capture_output=True, text=True, check=False
    )
    assert (done.returncode, done.stderr) == (
        2,
        "--gate is 'localhost:9695'; expected an http:// or https:// URL with a host.\n",
    )


def test_the_readmes_alias_runs_the_cli(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    alias = next(line.strip() for line in readme.splitlines() if line.strip().startswith("alias hasura="))
    cli = hasura_cli.install(tmp_path / "bin")
    path = os.pathsep.join([str(Path(sys.executable).parent), str(cli.parent), "/usr/bin", "/bin"])
    env = {**wrapper_env(tmp_path), "PATH": path}
    script = f"shopt -s expand_aliases\n{alias}\nhasura version\n"
    done = subprocess.run(["/bin/bash", "-c", script], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert (done.returncode, done.stdout.split()[-1]) == (0, f"version={hasura_cli.VERSION}")
    assert standin_runs(tmp_path)[0]["args"] == ["version"]

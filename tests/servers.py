"""Real servers for tests: an ASGI app under uvicorn in a thread, and a `console-proxy serve` subprocess.

Both bind loopback only and give back the base URL (`http://127.0.0.1:PORT`) once the server answers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
import uvicorn
from starlette.types import ASGIApp

STARTUP_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 15.0
# Variables that would change the proxy's decisions; a subprocess starts without them unless asked.
_AMBIENT_PREFIXES = ("HASURA_", "CONSOLE_PROXY_", "DO_NOT_TRACK", "XDG_STATE_HOME")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def uvicorn_server(app: ASGIApp, *, lifespan: str = "on", **config: object) -> Iterator[str]:
    """Serve `app` with a real uvicorn on a free loopback port in a thread; yield its base URL.

    Raises RuntimeError when the server does not start (for example when the lifespan startup fails).
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, lifespan=lifespan, log_level="warning", access_log=False, **config)  # type: ignore[arg-type]
    )
    exit_codes: list[object] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except SystemExit as exc:  # uvicorn exits this way when the lifespan startup fails
            exit_codes.append(exc.code)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the uvicorn server did not start (exit {exit_codes})")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(STOP_TIMEOUT_S)
        sock.close()


def clean_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The current environment without the proxy's own settings, with HOME at `home`, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_AMBIENT_PREFIXES)}
    env["HOME"] = str(home)
    env.update(extra or {})
    return env


@dataclasses.dataclass
class ServeProcess:
    """A running `console-proxy serve`; `stop()` sends SIGTERM and returns the exit code."""

    proc: subprocess.Popen[bytes]
    base: str
    output_path: Path

    def output(self) -> str:
        return self.output_path.read_text(encoding="utf-8", errors="replace")

    def send_signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self, signum: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_serve(
    tmp: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    ready_path: str = "/healthz",
    python: str = sys.executable,
) -> ServeProcess:
    """Start `python -m console_proxy serve --port P ARGS...` with stdout and stderr in `tmp/serve.log`.

    `python` is the interpreter to run it with (another virtual environment's, for example).

    The environment is `clean_env(tmp, env)`: HOME is `tmp` unless `env` sets it.

    Waits until `ready_path` answers 200; if the process exits first, the returned process has exited
    (check `proc.returncode` and `output()`).
    """
    port = free_port()
    output_path = tmp / "serve.log"
    with open(output_path, "wb") as out:
        proc = subprocess.Popen(
            [python, "-m", "console_proxy", "serve", "--port", str(port), *args],
            env=clean_env(tmp, env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    served = ServeProcess(proc=proc, base=f"http://127.0.0.1:{port}", output_path=output_path)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while proc.poll() is None:
        try:
            if httpx.get(served.base + ready_path, timeout=1.0).status_code == 200:
                return served
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            served.stop()
            raise RuntimeError("console-proxy serve did not become ready:\n" + served.output())
        time.sleep(0.05)
    return served


@contextlib.contextmanager
def serving(tmp: Path, *args: str, env: Mapping[str, str] | None = None) -> Iterator[ServeProcess]:
    """`start_serve` as a context manager that always stops the process."""
    served = start_serve(tmp, *args, env=env)
    try:
        yield served
    finally:
        served.stop()

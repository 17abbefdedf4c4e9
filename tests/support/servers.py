"""Real servers for tests: an ASGI app under uvicorn in a thread, and a `console-proxy serve` subprocess.

Both bind loopback only and give back the base URL (`http://127.0.0.1:PORT`) once the server answers.

Every subprocess a test starts goes through `spawn`: its own process group (so a stop reaches the workers of
`serve --workers N` too), killed by the kernel if the test session dies (so a killed pytest leaves no orphan),
and remembered, so that conftest's autouse fixture stops whatever a test left running, even when it failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import httpx
import uvicorn
from starlette.types import ASGIApp
from uvicorn.config import HTTPProtocolType, LifespanType, WSProtocolType

STARTUP_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 15.0
# Variables that would change the proxy's decisions; a subprocess starts without them unless asked.
_AMBIENT_PREFIXES = ("HASURA_", "CONSOLE_PROXY_", "DO_NOT_TRACK", "XDG_STATE_HOME")


PR_SET_PDEATHSIG = 1
# Every process `spawn` started, for `stop_started_since` (conftest's autouse fixture).
_SPAWNED: list[subprocess.Popen[bytes]] = []


def _die_with_the_tests() -> None:  # pragma: no cover - runs in the child between fork and exec
    # SIGKILL from the kernel when the thread that spawned this child dies (the tests only spawn from the main
    # thread, so: when pytest dies, killed with -9 or by a CI timeout).
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def spawn(
    args: list[str],
    *,
    env: Mapping[str, str] | None = None,
    stdout: int | IO[bytes] | None = None,
    stderr: int | IO[bytes] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    user: str | int | None = None,
) -> subprocess.Popen[bytes]:
    """`subprocess.Popen(args, ...)` in a process group of its own, dying with the test session."""
    proc = subprocess.Popen(
        args,
        start_new_session=True,
        preexec_fn=_die_with_the_tests,
        env=env,
        stdout=stdout,
        stderr=stderr,
        cwd=cwd,
        user=user,
    )
    _SPAWNED.append(proc)
    return proc


def _group_alive(pgid: int) -> bool:
    """Whether a process of group `pgid` still runs (zombies, which wait for whoever adopted them, do not)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as stat:
                state, _, pgrp = stat.read().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue
        if int(pgrp) == pgid and state not in ("Z", "X"):
            return True
    return False


def stop_process(proc: subprocess.Popen[bytes], signum: int = signal.SIGTERM, timeout_s: float = STOP_TIMEOUT_S) -> int:
    """Send `signum` and wait for the exit code; SIGKILL for the whole process group when it does not exit within
    `timeout_s`. Raises AssertionError when processes of its group (workers) outlive it: it was the leader."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    deadline = time.monotonic() + timeout_s
    while _group_alive(proc.pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError(f"processes of the group of {proc.args!r} outlived it (killed now)")
        time.sleep(0.02)
    return proc.returncode


def spawned() -> set[int]:
    """Which processes `spawn` has started so far (ids of their Popen objects), for `stop_started_since`."""
    return {id(proc) for proc in _SPAWNED}


def stop_started_since(before: set[int]) -> list[str]:
    """Kill every process `spawn` started since `spawned()` gave `before` that is still running (its group too);
    forget the finished ones. Returns what had to be killed."""
    killed = []
    for proc in list(_SPAWNED):
        if id(proc) in before:
            continue
        if proc.poll() is None or _group_alive(proc.pid):
            # Popen.args is typed as any form of command (a str, a path); `spawn` only ever starts a list[str].
            killed.append(" ".join(map(str, proc.args)))  # type: ignore[arg-type]
            with contextlib.suppress(AssertionError):
                stop_process(proc, signal.SIGKILL, timeout_s=5.0)
        _SPAWNED.remove(proc)
    return killed


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def uvicorn_server(
    app: ASGIApp,
    *,
    lifespan: LifespanType = "on",
    http: type[asyncio.Protocol] | HTTPProtocolType = "auto",
    ws: WSProtocolType = "auto",
    proxy_headers: bool = True,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
) -> Iterator[str]:
    """Serve `app` with a real uvicorn on a free loopback port in a thread; yield its base URL (http://, also when
    it serves TLS with `ssl_certfile`).

    Raises RuntimeError when the server does not start (for example when the lifespan startup fails), and when
    it does not stop within STOP_TIMEOUT_S: then its event loop's tasks are cancelled, so that nothing of it
    (a forwarder, say) runs on into the next tests.
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            lifespan=lifespan,
            http=http,
            ws=ws,
            log_level="warning",
            access_log=False,
            proxy_headers=proxy_headers,
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
        )
    )
    exit_codes: list[object] = []
    loops: list[asyncio.AbstractEventLoop] = []

    async def serve() -> None:
        loops.append(asyncio.get_running_loop())
        await server.serve(sockets=[sock])

    def run() -> None:
        try:
            with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
                runner.run(serve())
        except SystemExit as exc:  # uvicorn exits this way when the lifespan startup fails
            exit_codes.append(exc.code)

    thread = threading.Thread(target=run, daemon=True, name=f"uvicorn_server :{port}")
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
        stopped = not thread.is_alive()
        if not stopped:
            server.force_exit = True
            for loop in loops:  # asyncio.Runner cancels every task left once the main one ends
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_cancel_all, loop)
            thread.join(STOP_TIMEOUT_S)
        sock.close()
    if not stopped:
        state = "its tasks cancelled" if not thread.is_alive() else "still running, even cancelled"
        raise RuntimeError(f"the uvicorn server on port {port} did not stop within {STOP_TIMEOUT_S:g}s ({state})")


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    for task in asyncio.all_tasks(loop):
        task.cancel()


def clean_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The current environment without the proxy's own settings, with HOME at `home`, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_AMBIENT_PREFIXES)}
    env["HOME"] = str(home)
    # The e2e tests' own rules (support.rules): their made-up action names leave as sent.
    from support.rules import TEST_RULES

    env["CONSOLE_PROXY_RULES"] = str(TEST_RULES)
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
        """Send `signum`, wait for the exit code (SIGKILL to the process group after STOP_TIMEOUT_S)."""
        return stop_process(self.proc, signum)


def start_serve(
    tmp: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    ready_path: str = "/healthz",
    python: str = sys.executable,
    host: str = "127.0.0.1",
    port: int | None = None,
    wrap: Callable[[list[str]], list[str]] | None = None,
    scheme: str = "http",
    verify: ssl.SSLContext | bool = True,
) -> ServeProcess:
    """Start `python -m console_proxy serve --port P ARGS...` with stdout and stderr in `tmp/serve.log`.

    `python` is the interpreter to run it with (another virtual environment's, for example); `wrap` turns the command
    into the one to run (`support.small_disk.SmallDisk.command`, say).

    The environment is `clean_env(tmp, env)`: HOME is `tmp` unless `env` sets it. `host` and `port` (default: a
    free one) are where it listens.

    Waits until `ready_path` answers 200 (over `scheme`, https for `--ssl-certfile`, checked with `verify`); if
    the process exits first, the returned process has exited (check `proc.returncode` and `output()`).
    """
    port = free_port() if port is None else port
    output_path = tmp / "serve.log"
    host_args = [] if host == "127.0.0.1" else ["--host", host]
    with open(output_path, "wb") as out:
        command = [python, "-m", "console_proxy", "serve", "--port", str(port), *host_args, *args]
        proc = spawn(
            wrap(command) if wrap is not None else command,
            env=clean_env(tmp, env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    served = ServeProcess(proc=proc, base=f"{scheme}://{host}:{port}", output_path=output_path)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while proc.poll() is None:
        try:
            if httpx.get(served.base + ready_path, timeout=1.0, verify=verify).status_code == 200:
                return served
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            served.stop()
            raise RuntimeError("console-proxy serve did not become ready:\n" + served.output())
        time.sleep(0.05)
    return served


@contextlib.contextmanager
def serving(tmp: Path, *args: str, env: Mapping[str, str] | None = None, **options: Any) -> Iterator[ServeProcess]:
    """`start_serve` as a context manager that always stops the process (`options` go to `start_serve`)."""
    served = start_serve(tmp, *args, env=env, **options)
    try:
        yield served
    finally:
        served.stop()

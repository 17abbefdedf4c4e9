"""A real redis-server for tests: Debian's binary on a free loopback port, its files in a temporary directory.

`make test` installs the package when it is missing; a machine without it fails these tests, never skips them.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from support.servers import free_port, spawn, stop_process

STARTUP_TIMEOUT_S = 10.0


class RedisServer:
    """One redis-server process, restartable on the same port and directory (appendonly yes by default)."""

    def __init__(self, directory: Path, *, appendfsync: str = "always", appendonly: str = "yes") -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(binary).exists():
            raise RuntimeError("redis-server is not installed: run `make redis` (Debian package redis-server)")
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.appendfsync = appendfsync
        self.appendonly = appendonly
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.directory)]
        args += ["--appendonly", self.appendonly, "--appendfsync", self.appendfsync, "--save", ""]
        with open(self.directory / "redis.log", "ab") as log:
            self.proc = spawn(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        try:
            while True:
                try:
                    if client.ping():
                        return
                except redis.exceptions.RedisError:
                    pass
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start:\n" + (self.directory / "redis.log").read_text())
                time.sleep(0.02)
        finally:
            client.close()

    def stop(self, signum: int = signal.SIGTERM) -> None:
        if self.proc is not None:
            stop_process(self.proc, signum, timeout_s=10.0)
        self.proc = None

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)


@contextlib.contextmanager
def running_redis(directory: Path, **options: str) -> Iterator[RedisServer]:
    server = RedisServer(directory, **options)
    server.start()
    try:
        yield server
    finally:
        server.stop()

"""A real PostgreSQL server for tests: Debian's binaries on a free loopback port, its cluster in a temporary directory.

initdb and postgres refuse to run as root, so when the tests run as root (CI does) the server runs as the
`postgres` user that Debian's package creates, in a directory handed to that user. `make postgres` installs the
package when it is missing; a machine without it fails these tests, never skips them.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg

from support.servers import free_port, spawn, stop_process

STARTUP_TIMEOUT_S = 20.0
SERVER_USER = "postgres"


def _binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: run `make postgres` (Debian package postgresql)")
    return Path(found[-1]).parent


class PostgresServer:
    """One postgres process with a fresh cluster (trust authentication on loopback only, fsync off: the tests
    kill the collector, never the database)."""

    def __init__(self) -> None:
        self.bin = _binaries()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="collect-pg-"))
        self.data = self.root / "data"
        self.proc: subprocess.Popen[bytes] | None = None
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = SERVER_USER
            entry = pwd.getpwnam(SERVER_USER)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        done = subprocess.run(args, user=self.user, capture_output=True, text=True, timeout=60, cwd=self.root)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed:\n{done.stdout}{done.stderr}")

    def start(self) -> None:
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        )
        log = self.root / "postgres.log"
        args = [
            str(self.bin / "postgres"),
            "-D",
            str(self.data),
            "-p",
            str(self.port),
            "-k",
            str(self.root),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "max_connections=100",
            # Its workers come and go on their own schedule; the tests count the processes they leave behind.
            "-c",
            "autovacuum=off",
        ]
        with open(log, "ab") as out:
            self.proc = spawn(args, stdout=out, stderr=subprocess.STDOUT, user=self.user, cwd=self.root)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            try:
                with psycopg.connect(self.url(), connect_timeout=1):
                    return
            except psycopg.OperationalError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("postgres did not start:\n" + log.read_text(errors="replace"))
            time.sleep(0.05)

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.proc is not None:
            # SIGINT: "fast" shutdown, no waiting for clients to leave.
            stop_process(self.proc, signal.SIGINT, timeout_s=15.0)
        self.proc = None
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()

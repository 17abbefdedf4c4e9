"""Helpers of the collector's tests: events and batches as a gate forwards them, a `console-proxy collect`
subprocess, an in-process collector under a real uvicorn, the stores, and a client that retries as a gate does."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from console_proxy.collector.app import CollectorApp, CollectorConfig
from console_proxy.collector.house import load_rules
from console_proxy.collector.store import SqlStore, open_store
from console_proxy.collector.vocabulary import Vocabulary, vocabulary_of

from support.postgres_server import PostgresServer, running_postgres
from support.servers import clean_env, free_port, spawn, stop_process, uvicorn_server

STARTUP_TIMEOUT_S = 20.0
TIMESTAMP = "2026-12-01T10:00:00.000Z"
ROUTE = "/data/SOURCE/schema/SCHEMA/tables/TABLE/browse"
_databases = itertools.count()


def installation(n: int) -> str:
    """A fixed installation UUID per number, so that a failing test names the same ones every run."""
    return str(uuid.UUID(int=0x6F1C2B3A_9D4E_4F5A_8B6C_000000000000 + n))


def console_event(server: str | None, **fields: Any) -> dict[str, Any]:
    event = {
        "event_id": str(uuid.uuid4()),
        "event_type": "Data/SET_TABLE",
        "url": ROUTE,
        "console_mode": "server",
        "server_uuid": server,
        "cli_uuid": None,
        "server_version": "v2.40.0",
        "timestamp": TIMESTAMP,
        "data": None,
    }
    event.update(fields)
    return event


def server_event(server: str | None, **fields: Any) -> dict[str, Any]:
    event = {
        "event_id": str(uuid.uuid4()),
        "server_uuid": server,
        "server_version": "v2.40.0",
        "backend_type": "postgres",
        "db_kind": "postgres",
        "metrics": {"tables": 12, "relationships": {"manual": 3, "auto": 9}},
        "timestamp": TIMESTAMP,
    }
    event.update(fields)
    return event


def cli_event(cli: str | None, **fields: Any) -> dict[str, Any]:
    event = {
        "event_id": str(uuid.uuid4()),
        "cli_uuid": cli,
        "server_uuid": None,
        "command": "hasura migrate apply",
        "flags": ["endpoint"],
        "is_error": False,
        "os_platform": "linux",
        "os_arch": "amd64",
        "cli_version": "v2.40.0",
        "server_version": None,
        "timestamp": TIMESTAMP,
    }
    event.update(fields)
    return event


def batch(topic: str, events: list[Any], batch_id: str | None = None) -> dict[str, Any]:
    return {"topic": topic, "batch_id": batch_id or str(uuid.uuid4()), "data": events}


def body_of(envelope: Mapping[str, Any]) -> bytes:
    return json.dumps(envelope).encode()


def post(
    base: str, envelope: Mapping[str, Any], *, key: str | None = None, token: str | None = None, timeout: float = 10.0
) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["idempotency-key"] = key
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return httpx.post(base + "/v1/batches", content=body_of(envelope), headers=headers, timeout=timeout)


def vocabulary() -> Vocabulary:
    return vocabulary_of(load_rules())


@contextlib.contextmanager
def in_process(store_url: str, **config: Any) -> Iterator[tuple[str, CollectorApp]]:
    """A collector app on its own store under a real uvicorn on a loopback port: (base URL, app)."""
    app = CollectorApp(CollectorConfig(vocabulary=vocabulary(), **config), lambda: _created(store_url))
    with uvicorn_server(app) as base:
        yield base, app


def _created(url: str) -> SqlStore:
    store = open_store(url)
    store.create_tables()
    return store


@dataclasses.dataclass
class CollectProcess:
    """A running `console-proxy collect`; `stop()` sends SIGTERM (or `signum`) and returns the exit code."""

    proc: subprocess.Popen[bytes]
    base: str
    output_path: Path

    def output(self) -> str:
        return self.output_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, signum: int = signal.SIGTERM) -> int:
        return stop_process(self.proc, signum)


def start_collect(
    tmp: Path, *args: str, port: int | None = None, env: Mapping[str, str] | None = None, wait: bool = True
) -> CollectProcess:
    """`python -m console_proxy collect --port P ARGS...`, output in tmp/collect-PORT.log; waits for /readyz
    (unless `wait` is False) or for the process to exit."""
    port = port or free_port()
    output_path = tmp / f"collect-{port}.log"
    with open(output_path, "ab") as out:
        proc = spawn(
            [sys.executable, "-m", "console_proxy", "collect", "--port", str(port), *args],
            env=clean_env(tmp, env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    served = CollectProcess(proc, f"http://127.0.0.1:{port}", output_path)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while wait and proc.poll() is None:
        try:
            if httpx.get(served.base + "/readyz", timeout=1.0).status_code == 200:
                return served
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            served.stop()
            raise RuntimeError("console-proxy collect did not become ready:\n" + served.output())
        time.sleep(0.05)
    return served


def send_until_stored(
    base: str, envelope: Mapping[str, Any], *, deadline_s: float = 30.0, token: str | None = None
) -> tuple[httpx.Response, int]:
    """POST one batch as a gate does, again with the same batch_id and Idempotency-Key after a network error,
    408, 409, 429 or 5xx, until a 200; (the 200, how many attempts it took)."""
    deadline = time.monotonic() + deadline_s
    for attempt in itertools.count(1):
        try:
            response = post(base, envelope, key=str(envelope["batch_id"]), token=token, timeout=5.0)
            if response.status_code == 200:
                return response, attempt
            assert response.status_code in (408, 409, 429, 503), response.text
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"batch {envelope['batch_id']} not stored after {attempt} attempts")
        time.sleep(0.02 * min(attempt, 10))  # the backoff of a gate's forwarder between attempts
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for a test module; each test takes a database of its own (`pg_url`)."""
    with running_postgres() as server:
        yield server


@pytest.fixture
def pg_url(postgres: PostgresServer) -> str:
    return postgres.create_database(f"collect_{next(_databases)}")


@pytest.fixture(params=["duckdb", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path, postgres: PostgresServer) -> str:
    """Each test once on a DuckDB file and once on a PostgreSQL database. The server is asked for even on DuckDB:
    a module-scoped fixture asked for only by name, later, starts after the test's leak check took its list."""
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'collector.duckdb'}"
    return postgres.create_database(f"collect_{next(_databases)}")


def count_rows(url: str, table: str) -> int:
    store = open_store(url)
    try:
        return int(store.query(f"SELECT count(*) FROM {table}")[0][0])
    finally:
        store.close()

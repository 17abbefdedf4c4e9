"""`POST /v1/batches` over a real socket: what a body that is not an envelope gets, hostile rows, tokens,
Idempotency-Key, pressure. A real uvicorn on loopback, a real DuckDB file."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console_proxy.collector.app import CollectorApp, CollectorConfig
from console_proxy.collector.duckdb_store import DuckDBStore
from console_proxy.collector.store import Answer

from support.collect import batch, body_of, cli_event, console_event, installation, post, server_event, vocabulary
from support.servers import uvicorn_server

VOCAB = vocabulary()
TOKEN = "s3cret-token-for-the-gate-0001"


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[DuckDBStore]:
    store = DuckDBStore(tmp_path / "c.duckdb")
    store.create_tables()
    yield store


@pytest.fixture
def served(duck: DuckDBStore) -> Iterator[str]:
    config = CollectorConfig(vocabulary=VOCAB, max_body_bytes=64 * 1024, max_events=50, tokens=None)
    with uvicorn_server(CollectorApp(config, lambda: duck)) as base:
        yield base


def raw(base: str, body: bytes, content_type: str = "application/json", **headers: str) -> httpx.Response:
    return httpx.post(base + "/v1/batches", content=body, headers={"content-type": content_type, **headers})


GOOD = batch("console", [console_event(installation(1))])
NESTED = b'{"topic":"console","batch_id":"1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d","data":' + b"[" * 100000 + b"]" * 100000

BODIES = [
    (b"{", "application/json", 400, "invalid JSON"),
    (b"\xff\xfe{}", "application/json", 400, "invalid JSON"),
    (
        b'{"topic":"console","batch_id":"1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d","data":[NaN]}',
        "application/json",
        400,
        "invalid JSON",
    ),
    (
        b'{"topic":"console","topic":"cli","batch_id":"1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d","data":[]}',
        "application/json",
        400,
        "invalid JSON",
    ),
    (NESTED, "application/json", 413, "body too large"),
    (b"[]", "application/json", 400, "expected an object with exactly topic, batch_id and data"),
    (
        body_of({**GOOD, "extra": "alice@example.com"}),
        "application/json",
        400,
        "expected an object with exactly topic, batch_id and data",
    ),
    (body_of({**GOOD, "batch_id": "alice@example.com"}), "application/json", 400, "batch_id is not a UUID"),
    (body_of({**GOOD, "topic": 7}), "application/json", 400, "topic is not a short string"),
    (body_of({**GOOD, "topic": "x" * 65}), "application/json", 400, "topic is not a short string"),
    (body_of({**GOOD, "data": {"event_id": "x"}}), "application/json", 400, "data is not an array"),
    (
        body_of(batch("console", [console_event(installation(1)) for _ in range(51)])),
        "application/json",
        413,
        "too many events in one batch",
    ),
    (body_of(GOOD), "text/plain", 415, "expected Content-Type: application/json"),
    (body_of(GOOD), "application/x-www-form-urlencoded", 415, "expected Content-Type: application/json"),
]


@pytest.mark.parametrize(("body", "content_type", "status", "error"), BODIES)
def test_a_body_that_is_not_an_envelope_gets_a_fixed_4xx(
    served: str, duck: DuckDBStore, body: bytes, content_type: str, status: int, error: str
) -> None:
    response = raw(served, body, content_type)
    assert (response.status_code, response.json()) == (status, {"error": error})
    assert duck.query("SELECT count(*) FROM bad_rows") == [(0,)]


def test_hostile_rows_end_in_bad_rows_and_never_in_the_data(served: str, duck: DuckDBStore) -> None:
    secret = "alice@example.com"
    rows: list[Any] = [
        console_event(installation(1), url=f"/data/{secret}/schema/public"),
        console_event(installation(1), event_type=f"Data/{secret}"),
        console_event(installation(1), console_mode=secret),
        console_event(secret),
        console_event(installation(1), server_version=secret),
        console_event(installation(1), payload=secret),
        console_event(installation(1), timestamp=secret),
        console_event(installation(1), event_id=secret),
        secret,
        None,
        console_event(installation(1)),
    ]
    response = post(served, batch("console", rows))
    assert response.status_code == 200
    assert {k: v for k, v in response.json().items() if k != "batch_id"} == {
        "stored": 1,
        "duplicates": 0,
        "rejected": 10,
    }
    assert duck.query("SELECT reason FROM bad_rows ORDER BY position") == [
        ("bad_url",),
        ("bad_event_type",),
        ("bad_console_mode",),
        ("bad_server_uuid",),
        ("bad_server_version",),
        ("unknown_field",),
        ("bad_timestamp",),
        ("bad_event_id",),
        ("not_an_object",),
        ("not_an_object",),
    ]
    for table in ("console_events", "server_metrics", "cli_events"):
        assert secret not in repr(duck.query(f"SELECT * FROM {table}"))
    server = post(served, batch("server_metrics_v2", [server_event(installation(1), metrics={"tables": secret})]))
    cli = post(served, batch("cli", [cli_event(installation(1), command=f"hasura {secret}")]))
    unknown = post(served, batch(secret, [console_event(installation(1))]))
    assert [r.json()["rejected"] for r in (server, cli, unknown)] == [1, 1, 1]
    assert duck.query("SELECT count(*) FROM console_events") == [(1,)]
    assert duck.query("SELECT count(*), count(topic) FROM bad_rows") == [(13, 12)]


def test_the_answer_names_the_batch_and_comes_after_commit(served: str, duck: DuckDBStore) -> None:
    envelope = batch("console", [console_event(installation(1))])
    response = post(served, envelope)
    assert response.json() == {"batch_id": envelope["batch_id"], "stored": 1, "duplicates": 0, "rejected": 0}
    assert duck.query("SELECT CAST(batch_id AS VARCHAR) FROM console_events") == [(envelope["batch_id"],)]


def test_idempotency_key_replays_the_first_answer_and_refuses_another_body(served: str) -> None:
    envelope = batch("console", [console_event(installation(1))])
    key = str(envelope["batch_id"])
    first, again = post(served, envelope, key=key), post(served, envelope, key=key)
    assert first.json() == again.json() == {"batch_id": key, "stored": 1, "duplicates": 0, "rejected": 0}
    assert (first.headers.get("idempotent-replayed"), again.headers["idempotent-replayed"]) == (None, "true")
    other = post(served, batch("console", [], batch_id=key), key=key)
    assert (other.status_code, other.json()) == (422, {"error": "this Idempotency-Key came before with another body"})
    without = post(served, envelope)
    assert without.json() == {"batch_id": key, "stored": 0, "duplicates": 1, "rejected": 0}
    bad = raw(served, body_of(envelope), **{"idempotency-key": "x" * 256})
    assert (bad.status_code, bad.json()) == (400, {"error": "Idempotency-Key is not 1 to 255 visible ASCII characters"})


def test_a_token_file_makes_the_bearer_token_required(duck: DuckDBStore) -> None:
    config = CollectorConfig(vocabulary=VOCAB, tokens=(b"another-token-of-16+", TOKEN.encode()))
    with uvicorn_server(CollectorApp(config, lambda: duck)) as base:
        envelope = batch("console", [console_event(installation(1))])
        for token in (None, "wrong-token-but-long-enough", TOKEN + "x", TOKEN[:-1]):
            refused = post(base, envelope, token=token)
            assert (refused.status_code, refused.json(), refused.headers["www-authenticate"]) == (
                401,
                {"error": "a valid bearer token is required"},
                "Bearer",
            )
        basic = raw(base, body_of(envelope), authorization=f"Basic {TOKEN}")
        assert basic.status_code == 401
        assert post(base, envelope, token=TOKEN).status_code == 200
        assert httpx.get(base + "/v1/dashboard").status_code == 200
        assert duck.query("SELECT count(*) FROM console_events") == [(1,)]


class HeldStore(DuckDBStore):
    """A real DuckDB store whose writes wait until the test lets them go."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.release = threading.Event()

    def write_once(self, *args: Any) -> Answer:
        self.release.wait(10)
        return super().write_once(*args)


def test_too_many_batches_in_flight_get_429_and_a_busy_store_503(tmp_path: Path) -> None:
    store = HeldStore(tmp_path / "c.duckdb")
    store.create_tables()
    app = CollectorApp(CollectorConfig(vocabulary=VOCAB, max_in_flight=1), lambda: store)
    with uvicorn_server(app) as base:
        held: list[httpx.Response] = []
        first = threading.Thread(target=lambda: held.append(post(base, batch("console", [console_event(None)]))))
        first.start()
        deadline = time.monotonic() + 10
        while app._in_flight == 0 and time.monotonic() < deadline:
            time.sleep(0.01)  # polls a condition; nothing waits on time alone
        busy = post(base, batch("console", [console_event(None)]))
        store.release.set()
        first.join(10)
        assert (busy.status_code, busy.headers["retry-after"], busy.json()) == (
            429,
            "1",
            {"error": "too many batches in flight"},
        )
        assert held[0].status_code == 200
    locked = DuckDBStore(tmp_path / "d.duckdb", lock_wait_s=0.01)
    locked.create_tables()
    with uvicorn_server(CollectorApp(CollectorConfig(vocabulary=VOCAB), lambda: locked)) as base:
        with locked._lock:
            response = post(base, batch("console", [console_event(None)]))
        assert (response.status_code, response.headers["retry-after"], response.json()) == (
            503,
            "2",
            {"error": "the store is unavailable"},
        )
        assert post(base, batch("console", [console_event(None)])).status_code == 200


class BrokenStore(DuckDBStore):
    def write_once(self, *args: Any) -> Answer:
        raise RuntimeError("a bug")


def test_a_failure_inside_the_store_is_503_never_500(tmp_path: Path) -> None:
    store = BrokenStore(tmp_path / "c.duckdb")
    store.create_tables()
    with uvicorn_server(CollectorApp(CollectorConfig(vocabulary=VOCAB), lambda: store)) as base:
        response = post(base, batch("console", [console_event(None)]))
    assert (response.status_code, response.json()) == (503, {"error": "the batch could not be stored"})


@pytest.mark.parametrize(
    ("method", "path", "status", "body"),
    [
        ("GET", "/v1/batches", 405, {"error": "use POST"}),
        ("POST", "/", 405, {"error": "use GET"}),
        ("GET", "/nothing/here", 404, {"error": "not found"}),
        ("GET", "/healthz", 200, {"ok": True}),
        ("GET", "/readyz", 200, {"ready": True}),
    ],
)
def test_other_paths_get_fixed_answers(served: str, method: str, path: str, status: int, body: object) -> None:
    response = httpx.request(method, served + path)
    assert (response.status_code, response.json()) == (status, body)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
FIELDS = st.sampled_from(sorted(console_event(None))) | st.text(max_size=8)


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as kept_alive:
        yield kept_alive


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    topic=st.sampled_from(["console", "cli", "server_metrics_v2", "other"]) | st.text(max_size=70),
    rows=st.lists(st.dictionaries(FIELDS, JSON_VALUES, max_size=12) | JSON_VALUES, max_size=5),
    noise=st.binary(max_size=40),
)
def test_no_body_makes_the_collector_answer_500(
    served: str, client: httpx.Client, topic: str, rows: list[Any], noise: bytes
) -> None:
    envelope = {"topic": topic, "batch_id": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "data": rows}
    for body in (json.dumps(envelope).encode(), noise, json.dumps(envelope).encode()[: len(noise)]):
        response = client.post(served + "/v1/batches", content=body, headers={"content-type": "application/json"})
        assert response.status_code in (200, 400, 413)

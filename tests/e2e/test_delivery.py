"""Delivery end to end over real sockets: the app under uvicorn or `console-proxy serve` in a subprocess,
a real collector, a real spool file: outages, kill -9, a full spool, dead letters, opt-out."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from console_proxy.asgi.app import create_app
from console_proxy.cli.main import main
from console_proxy.core.settings import Settings

from support.collector import Answer, Collector, invariant_holds, read_metrics
from support.outbound import contract_keys
from support.redis_server import running_redis
from support.servers import start_serve, uvicorn_server

SERVER_UUID = "11111111-2222-4333-8444-555555555555"
EVENTS = "/_telemetry/v1/events"
FAST = ("--batch-max-events", "20", "--batch-max-delay-s", "0.05", "--retry-base-s", "0.01", "--retry-cap-s", "0.2")


@pytest.fixture
def collector() -> Iterator[Collector]:
    with Collector() as c:
        yield c


@pytest.fixture(params=["sqlite", "redis"])
def queue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The queue backend a test runs against: the SQLite spool, or a real redis-server's stream."""
    if request.param == "sqlite":
        yield "sqlite"
        return
    with running_redis(tmp_path / "redis") as server:
        yield server.url


def batch(*types: str) -> dict[str, Any]:
    return {"events": [{"type": t, "route": "/console/data/db1/schema/s1/tables/t1/browse"} for t in types]}


def settings_for(tmp_path: Path, collector: Collector, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "upstream": collector.url,
        "state_dir": tmp_path / "state",
        "server_uuid": SERVER_UUID,
        "batch_max_events": 20,
        "batch_max_delay_s": 0.05,
        "retry_base_s": 0.01,
        "retry_cap_s": 0.1,
        "shutdown_grace_s": 1.0,
    }
    return Settings(**{**values, **overrides})


def metrics(base: str) -> dict[str, float]:
    response = httpx.get(base + "/metrics")
    assert response.status_code == 200
    return read_metrics(response.text)


def wait_until(condition: Any, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.02)


def test_events_accepted_while_the_collector_is_down_are_delivered_when_it_returns(
    tmp_path: Path, collector: Collector, queue: str
) -> None:
    collector.down()
    with uvicorn_server(create_app(settings_for(tmp_path, collector, queue=queue), env={})) as base:
        types = [f"Outage/E{i}" for i in range(30)]
        for i in range(0, 30, 3):
            response = httpx.post(base + EVENTS, json=batch(*types[i : i + 3]))
            assert (response.status_code, response.json()) == (202, {"accepted": 3, "dropped": 0})
        during = metrics(base)
        assert (during["console_proxy_events_accepted_total"], during["console_proxy_spool_events"]) == (30, 30)
        assert invariant_holds(during)
        collector.up()
        delivered = collector.wait_for_events(30)
        assert sorted(e["event_type"] for e in delivered) == sorted(types)
        assert {(e["url"], e["server_uuid"], e["console_mode"]) for e in delivered} == {
            ("/data/SOURCE/schema/SCHEMA/tables/TABLE/browse", SERVER_UUID, "server")
        }
        wait_until(lambda: metrics(base)["console_proxy_spool_events"] == 0)
        after = metrics(base)
        assert after["console_proxy_events_forwarded_total"] == 30
        assert after["console_proxy_events_received_total{source=console}"] == 30
        assert after["console_proxy_upstream_retries_total"] >= 1
        assert invariant_holds(after)
    for request in collector.requests:
        assert request.headers["user-agent"] == "console-proxy/0.2.0"
        assert not {"cookie", "x-forwarded-for", "forwarded", "referer"} & set(request.headers)


def test_a_full_spool_answers_503_with_retry_after_and_evicts_nothing(
    tmp_path: Path, collector: Collector, queue: str
) -> None:
    collector.down()
    with uvicorn_server(create_app(settings_for(tmp_path, collector, spool_max_events=4, queue=queue), env={})) as base:
        assert httpx.post(base + EVENTS, json=batch("Full/A", "Full/B")).status_code == 202
        assert httpx.post(base + EVENTS, json=batch("Full/C", "Full/D")).status_code == 202
        refused = httpx.post(base + EVENTS, json=batch("Full/E"))
        assert (refused.status_code, refused.headers["retry-after"], refused.json()) == (
            503,
            "5",
            {"error": "spool is full"},
        )
        values = metrics(base)
        assert values["console_proxy_batches_rejected_total{reason=spool_full,source=console}"] == 1
        assert (values["console_proxy_events_accepted_total"], values["console_proxy_spool_events"]) == (4, 4)
        assert invariant_holds(values)
        wait_until(lambda: httpx.get(base + "/readyz").status_code == 503)  # no room for a batch
        collector.up()
        assert sorted(e["event_type"] for e in collector.wait_for_events(4)) == ["Full/A", "Full/B", "Full/C", "Full/D"]
        wait_until(lambda: metrics(base)["console_proxy_spool_events"] == 0)
        wait_until(lambda: httpx.get(base + "/readyz").status_code == 200)
        assert httpx.post(base + EVENTS, json=batch("Full/E")).status_code == 202
        assert invariant_holds(metrics(base))


def test_a_400_is_dead_lettered_and_not_retried(tmp_path: Path, collector: Collector, queue: str) -> None:
    collector.answer(Answer(400))
    with uvicorn_server(create_app(settings_for(tmp_path, collector, queue=queue), env={})) as base:
        assert httpx.post(base + EVENTS, json=batch("Dead/A", "Dead/B")).status_code == 202
        wait_until(lambda: metrics(base)["console_proxy_events_dead_lettered_total"] == 2)
        assert httpx.post(base + EVENTS, json=batch("Live/C")).status_code == 202
        assert [e["event_type"] for e in collector.wait_for_events(1)] == ["Live/C"]
        wait_until(lambda: metrics(base)["console_proxy_spool_events"] == 0)
        values = metrics(base)
        assert (values["console_proxy_events_forwarded_total"], values["console_proxy_upstream_retries_total"]) == (
            1,
            0,
        )
        assert invariant_holds(values)
    assert [r.status for r in collector.requests] == [400, 200]


@pytest.mark.parametrize(
    "failure", [Answer(500), Answer(503, retry_after="0"), Answer(408), Answer(429), Answer(reset=True)]
)
def test_retryable_answers_are_retried_until_delivered(
    tmp_path: Path, collector: Collector, failure: Answer, queue: str
) -> None:
    collector.answer(failure, failure)
    with uvicorn_server(create_app(settings_for(tmp_path, collector, queue=queue), env={})) as base:
        assert httpx.post(base + EVENTS, json=batch("Retry/A")).status_code == 202
        assert [e["event_type"] for e in collector.wait_for_events(1)] == ["Retry/A"]
        wait_until(lambda: metrics(base)["console_proxy_spool_events"] == 0)
        values = metrics(base)
        assert (values["console_proxy_upstream_retries_total"], values["console_proxy_events_forwarded_total"]) == (
            2,
            1,
        )
        assert invariant_holds(values)
    assert len({r.headers["idempotency-key"] for r in collector.requests}) == 1
    assert len(collector.requests) == 3


def test_readyz_fails_and_batches_get_503_while_the_spool_is_unwritable(tmp_path: Path, collector: Collector) -> None:
    (tmp_path / "file").write_text("x")
    settings = settings_for(tmp_path, collector, state_dir=tmp_path / "file" / "state")
    with uvicorn_server(create_app(settings, env={})) as base:
        assert httpx.get(base + "/readyz").status_code == 503
        refused = httpx.post(base + EVENTS, json=batch("A/B"))
        assert (refused.status_code, refused.headers["retry-after"]) == (503, "5")
    assert collector.connections == 0


def test_status_shows_the_spool_depth_and_the_last_delivery(tmp_path: Path, collector: Collector) -> None:
    settings = settings_for(tmp_path, collector)
    with uvicorn_server(create_app(settings, env={})) as base:
        assert httpx.post(base + EVENTS, json=batch("Status/A", "Status/B")).status_code == 202
        collector.wait_for_events(2)
        wait_until(lambda: metrics(base)["console_proxy_spool_events"] == 0)
    result = CliRunner().invoke(
        main,
        ["status", "--upstream", collector.url, "--state-dir", str(tmp_path / "state"), "--server-uuid", SERVER_UUID],
        env={"HOME": str(tmp_path)},
    )
    assert result.exit_code == 0
    spool_line, delivery_line, *accounting = result.stdout.splitlines()[-4:]
    assert accounting == [
        "accounting by topic:",
        "  console: 2 accepted = 0 stored + 0 duplicates + 0 rejected + 2 uncounted + 0 queued + 0 dead-lettered"
        " + 0 expired (adds up)",
    ]
    assert spool_line == (
        f"spool: 0 events, 0 bytes in {tmp_path / 'state' / 'spool.db'} "
        "(2 accepted, 2 forwarded, 0 dead-lettered, 0 expired)"
    )
    assert delivery_line.startswith("last delivery: 20") and delivery_line.endswith("Z")


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (("--enable-telemetry", "false"), {}),
        ((), {"HASURA_GRAPHQL_ENABLE_TELEMETRY": "false"}),
        ((), {"CONSOLE_PROXY_ENABLE_TELEMETRY": "no"}),
        ((), {"DO_NOT_TRACK": "1"}),
    ],
)
def test_opted_out_the_collector_sees_no_connection_and_no_spool_is_created(
    tmp_path: Path, collector: Collector, args: tuple[str, ...], env: dict[str, str]
) -> None:
    state = tmp_path / "state"
    served = start_serve(
        tmp_path,
        "--upstream",
        collector.url,
        "--state-dir",
        str(state),
        "--server-uuid",
        SERVER_UUID,
        *FAST,
        *args,
        env=env,
    )
    try:
        assert contract_keys(httpx.get(served.base + "/_telemetry/v1/status").json()) == {
            "enabled": False,
            "mode": "server",
            "upload": False,
            "test_events": "kept",
        }
        response = httpx.post(served.base + EVENTS, json=batch("Off/A"))
        assert response.status_code == 204
        time.sleep(0.3)  # a forwarder, if one ran by mistake, would have connected by now
    finally:
        assert served.stop() == 0
    assert collector.connections == 0 and collector.requests == []
    assert not (state / "spool.db").exists()


def test_sigterm_flushes_what_is_spooled_before_exiting(tmp_path: Path, collector: Collector) -> None:
    args = (
        "--upstream",
        collector.url,
        "--state-dir",
        str(tmp_path / "state"),
        "--server-uuid",
        SERVER_UUID,
        "--batch-max-delay-s",
        "60",
    )  # nothing would leave before a minute, but for the shutdown flush
    served = start_serve(tmp_path, *args)
    try:
        assert httpx.post(served.base + EVENTS, json=batch("Term/A", "Term/B")).status_code == 202
        assert collector.requests == []
    finally:
        assert served.stop(signal.SIGTERM) == 0
    assert sorted(e["event_type"] for e in collector.delivered_events()) == ["Term/A", "Term/B"]


def test_what_a_shutdown_cannot_flush_stays_spooled_for_the_next_start(tmp_path: Path, collector: Collector) -> None:
    collector.down()
    args = (
        "--upstream",
        collector.url,
        "--state-dir",
        str(tmp_path / "state"),
        "--server-uuid",
        SERVER_UUID,
        *FAST,
        "--shutdown-grace-s",
        "0.3",
    )
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
    first = start_serve(tmp_path / "first", *args)
    try:
        assert httpx.post(first.base + EVENTS, json=batch("Kept/A", "Kept/B", "Kept/C")).status_code == 202
    finally:
        assert first.stop(signal.SIGTERM) == 0
    assert "3 events stay spooled for the next start" in first.output()
    collector.up()
    second = start_serve(tmp_path / "second", *args)
    try:
        assert sorted(e["event_type"] for e in collector.wait_for_events(3)) == ["Kept/A", "Kept/B", "Kept/C"]
        wait_until(lambda: metrics(second.base)["console_proxy_spool_events"] == 0)
        assert invariant_holds(metrics(second.base))
    finally:
        assert second.stop() == 0


class Poster(threading.Thread):
    """Posts batches of 5 uniquely named events to `base` until stopped; remembers which got a 202."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.accepted: list[str] = []
        self.failed = 0
        self.stop = threading.Event()

    def run(self) -> None:
        n = 0
        with httpx.Client(timeout=2.0) as client:
            while not self.stop.is_set():
                types = [f"Stream/E{n + k}" for k in range(5)]
                n += 5
                try:
                    response = client.post(self.base + EVENTS, json=batch(*types))
                except httpx.TransportError:
                    self.failed += 1
                    time.sleep(0.01)
                    continue
                if response.status_code == 202:
                    self.accepted.extend(types)
                else:
                    self.failed += 1


def test_kill_9_during_a_stream_loses_no_accepted_event_and_duplicates_keep_their_ids(
    tmp_path: Path, collector: Collector
) -> None:
    collector.default = Answer(delay_s=0.05)  # a slow collector, so batches queue up behind it
    state = tmp_path / "state"
    args = ("--upstream", collector.url, "--state-dir", str(state), "--server-uuid", SERVER_UUID, *FAST)
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
    first = start_serve(tmp_path / "first", *args)
    poster = Poster(first.base)
    poster.start()
    try:
        wait_until(lambda: len(poster.accepted) >= 150 and len(collector.requests) >= 3)
        # The next batch is received but never answered: the kill lands while it is in flight.
        collector.default = Answer(delay_s=60.0)
        seen = len(collector.requests)
        wait_until(lambda: len(collector.requests) > seen)
        os.kill(first.proc.pid, signal.SIGKILL)
        first.proc.wait()
        collector.default = Answer(delay_s=0.05)
        accepted_before_kill = len(poster.accepted)
        second = start_serve(tmp_path / "second", *args)
        poster.base = second.base
        wait_until(lambda: len(poster.accepted) >= accepted_before_kill + 50)
    finally:
        poster.stop.set()
        poster.join()
    try:
        collector.wait_for_events(len(poster.accepted))
        wait_until(lambda: metrics(second.base)["console_proxy_spool_events"] == 0)
        values = metrics(second.base)
    finally:
        assert second.stop() == 0
    delivered = collector.delivered()
    ids_by_type: dict[str, set[str]] = defaultdict(set)
    batches_by_id: dict[str, set[str]] = defaultdict(set)
    contents_by_batch: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    for request in delivered:
        assert request.headers["idempotency-key"] == request.body["batch_id"]
        contents_by_batch[request.body["batch_id"]].add(tuple(e["event_id"] for e in request.body["data"]))
        for e in request.body["data"]:
            ids_by_type[e["event_type"]].add(e["event_id"])
            batches_by_id[e["event_id"]].add(request.body["batch_id"])
    assert set(poster.accepted) <= set(ids_by_type)  # every 202 arrived
    assert all(len(ids) == 1 for ids in ids_by_type.values())  # a re-sent event keeps its event_id
    assert all(len(b) == 1 for b in batches_by_id.values())  # ... and its batch_id
    assert all(len(c) == 1 for c in contents_by_batch.values())  # a re-sent batch holds the same events
    resent = [r.body["batch_id"] for r in delivered].count(collector.requests[seen].body["batch_id"])
    assert resent == 2  # the batch in flight at the kill was sent again after the restart
    assert (
        values["console_proxy_events_accepted_total"]
        == values["console_proxy_events_forwarded_total"]
        == len(batches_by_id)
    )
    assert invariant_holds(values)


def test_status_says_when_the_spool_cannot_be_read(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "spool.db").write_bytes(b"not a database" * 300)
    result = CliRunner().invoke(
        main,
        ["status", "--upstream", "http://127.0.0.1:9/c", "--state-dir", str(state), "--server-uuid", SERVER_UUID],
        env={"HOME": str(tmp_path)},
    )
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-2:] == [
        f"spool: {state / 'spool.db'} cannot be read (file is not a database)",
        "last delivery: unknown",
    ]
    assert (state / "spool.db").read_bytes() == b"not a database" * 300


def test_a_deleted_spool_is_noticed_before_any_202_and_no_scrape_creates_one(
    tmp_path: Path, collector: Collector
) -> None:
    settings = settings_for(tmp_path, collector)
    state = tmp_path / "state"
    with uvicorn_server(create_app(settings, env={})) as base:
        assert httpx.post(base + EVENTS, json=batch("A/B")).status_code == 202
        collector.wait_for_events(1)
        metrics(base)
        for name in ("spool.db", "spool.db-wal", "spool.db-shm"):
            (state / name).unlink(missing_ok=True)
        assert httpx.get(base + "/readyz").status_code == 503
        refused = httpx.post(base + EVENTS, json=batch("A/C"))
        assert (refused.status_code, refused.json(), refused.headers["retry-after"]) == (
            503,
            {"error": "spool is missing"},
            "5",
        )
        assert httpx.get(base + "/metrics").status_code == 200
        assert sorted(p.name for p in state.iterdir()) == ["spool.db.lock"]


def test_development_builds_reach_the_collector_in_batches_of_their_own(tmp_path: Path, collector: Collector) -> None:
    def message(topic: str, event_type: str) -> dict[str, Any]:
        return {"topic": topic, "data": {"event_type": event_type, "url": "/console/data/db1/sql"}}

    with uvicorn_server(create_app(settings_for(tmp_path, collector), env={})) as base:
        for topic, event_type in [
            ("console", "Prod/A"),
            ("console_test", "Dev/A"),
            ("console-v2", "PROD_B"),
            ("console-test-v2", "DEV_B"),
        ]:
            assert httpx.post(base + EVENTS, json=message(topic, event_type)).status_code == 202
        delivered = collector.wait_for_events(4)
    assert len(delivered) == 4
    by_topic: dict[str, set[str]] = {}
    for request in collector.requests:
        if request.status == 200:
            types = {event["event_type"] for event in request.body["data"]}
            by_topic.setdefault(request.body["topic"], set()).update(types)
    assert by_topic == {"console": {"Prod/A", "PROD_B"}, "console_test": {"Dev/A", "DEV_B"}}

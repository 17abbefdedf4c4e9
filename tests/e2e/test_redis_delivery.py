"""The Redis queue end to end: `console-proxy serve` processes sharing one real redis-server, a real collector.

Faults: kill -9 of a process holding a batch in flight, Redis restarted under load, Redis down, the collector
down while several processes write. Every run: each accepted event is delivered, duplicates only as re-sent
batches with the same batch_id and event_ids, and the group's counters agree.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from click.testing import CliRunner

from console_proxy.cli.main import main

from support.collector import Answer, Collector, invariant_holds, read_metrics
from support.redis_server import RedisServer, running_redis
from support.servers import ServeProcess, start_serve

SERVER_UUID = "11111111-2222-4333-8444-555555555555"
EVENTS = "/_telemetry/v1/events"
FAST: tuple[str, ...] = ("--batch-max-events", "20", "--batch-max-delay-s", "0.05")
FAST += ("--retry-base-s", "0.01", "--retry-cap-s", "0.2")
# The posters are one client: its budget must not be what refuses them.
FAST += ("--client-rate", "1000000", "--client-burst", "1000000")


@pytest.fixture
def collector() -> Iterator[Collector]:
    with Collector() as c:
        yield c


def batch(*types: str) -> dict[str, Any]:
    return {"events": [{"type": t, "route": "/console/data/db1/schema/s1/tables/t1/browse"} for t in types]}


STARTED: list[ServeProcess] = []


@pytest.fixture(autouse=True)
def stop_every_server() -> Iterator[None]:
    """Whatever a test asserts, no `serve` (nor its workers) outlives it."""
    yield
    while STARTED:
        STARTED.pop().stop()


def serve(tmp_path: Path, name: str, redis: RedisServer, collector: Collector, *extra: str) -> ServeProcess:
    (tmp_path / name).mkdir(exist_ok=True)
    args = ("--upstream", collector.url, "--queue", redis.url, "--server-uuid", SERVER_UUID, "--queue-lease-s", "1")
    served = start_serve(tmp_path / name, *args, "--state-dir", str(tmp_path / name / "state"), *FAST, *extra)
    STARTED.append(served)
    return served


def metrics(base: str) -> dict[str, float]:
    response = httpx.get(base + "/metrics")
    assert response.status_code == 200
    return read_metrics(response.text)


def wait_until(condition: Any, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.02)


class Poster(threading.Thread):
    """Posts batches of 5 uniquely named events, to each base in turn, until stopped; remembers the answers."""

    def __init__(self, *bases: str) -> None:
        super().__init__(daemon=True)
        self.bases = list(bases)
        self.accepted: list[str] = []
        self.statuses: dict[int, int] = defaultdict(int)  # 0: no answer (connection refused or reset)
        self.stop = threading.Event()

    def run(self) -> None:
        n = 0
        with httpx.Client(timeout=5.0) as client:
            while not self.stop.is_set():
                types = [f"Load/E{n + k}" for k in range(5)]
                base = self.bases[(n // 5) % len(self.bases)]
                n += 5
                try:
                    response = client.post(base + EVENTS, json=batch(*types))
                except httpx.TransportError:
                    self.statuses[0] += 1
                    time.sleep(0.01)
                    continue
                self.statuses[response.status_code] += 1
                if response.status_code == 202:
                    self.accepted.extend(types)
                elif response.status_code == 503:
                    assert response.headers["retry-after"] == "5"
                    time.sleep(0.02)

    def finish(self) -> None:
        self.stop.set()
        self.join()


def check_delivery(collector: Collector, accepted: list[str], *, in_doubt: int = 0) -> tuple[int, int, int]:
    """Every accepted event delivered, re-sent only with its own event_id in its own batch; (accepted, delivered,
    duplicated) events. `in_doubt`: events whose batch Redis took but whose answer was lost (the client saw a
    503 or a reset, not a 202) may arrive too."""
    delivered = collector.delivered()
    ids_by_type: dict[str, set[str]] = defaultdict(set)
    batches_by_event: dict[str, set[str]] = defaultdict(set)
    contents_by_batch: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    copies = 0
    for request in delivered:
        assert request.headers["idempotency-key"] == request.body["batch_id"]
        contents_by_batch[request.body["batch_id"]].add(tuple(e["event_id"] for e in request.body["data"]))
        for e in request.body["data"]:
            ids_by_type[e["event_type"]].add(e["event_id"])
            batches_by_event[e["event_id"]].add(request.body["batch_id"])
            copies += 1
    assert set(accepted) <= set(ids_by_type)  # every 202 arrived: nothing lost
    assert len(set(ids_by_type) - set(accepted)) <= in_doubt  # nothing else arrived
    assert all(len(ids) == 1 for ids in ids_by_type.values())  # a re-sent event keeps its event_id
    assert all(len(b) == 1 for b in batches_by_event.values())  # ... and its batch_id
    assert all(len(c) == 1 for c in contents_by_batch.values())  # a re-sent batch holds the same events
    return len(accepted), len(batches_by_event), copies - len(batches_by_event)


def settled(base: str, accepted: int, *, in_doubt: int = 0) -> dict[str, float]:
    """Wait until the queue is empty and everything it took was forwarded; it took the `accepted` events (and
    up to `in_doubt` more)."""

    def done() -> bool:
        values = metrics(base)
        return values["console_proxy_spool_events"] == 0 and (
            values["console_proxy_events_forwarded_total"] == values["console_proxy_events_accepted_total"]
        )

    wait_until(done)
    values = metrics(base)
    assert accepted <= values["console_proxy_events_accepted_total"] <= accepted + in_doubt
    assert invariant_holds(values)
    return values


def test_workers_share_the_queue_and_status_shows_its_consumers(
    tmp_path: Path, redis_server: RedisServer, collector: Collector
) -> None:
    served = serve(tmp_path, "a", redis_server, collector, "--workers", "2")
    try:
        assert "queue: the redis stream at " + redis_server.url + ", shared; 2 worker processes here" in served.output()
        for i in range(10):
            assert httpx.post(served.base + EVENTS, json=batch(f"W/E{i}")).status_code == 202
        assert len(collector.wait_for_events(10)) == 10
        values = settled(served.base, 10)
        assert values["console_proxy_queue_pending_events"] == values["console_proxy_queue_dead_letters"] == 0
        assert 1 <= values["console_proxy_queue_consumers"] <= 2
        result = CliRunner().invoke(
            main,
            ["status", "--upstream", collector.url, "--queue", redis_server.url, "--server-uuid", SERVER_UUID],
            env={"HOME": str(tmp_path)},
        )
    finally:
        assert served.stop() == 0
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    queue_line = next(line for line in lines if line.startswith("queue: "))
    assert queue_line == (
        f"queue: 0 events, 0 bytes in the redis stream at {redis_server.url} "
        "(10 accepted, 10 forwarded, 0 dead-lettered, 0 expired; 0 dead letters kept)"
    )
    consumers = [line for line in lines[: lines.index("accounting by topic:")] if line.startswith("  ")]
    assert lines[lines.index(queue_line) + 1] == f"consumers: {len(consumers)}"
    assert all(" 0 pending, idle " in line for line in consumers)
    assert 1 <= len(consumers) <= 2 and lines[-3].startswith("last delivery: 20")
    assert lines[-2:] == [
        "accounting by topic:",
        "  console: 10 accepted = 0 stored + 0 duplicates + 0 rejected + 10 uncounted + 0 queued + 0 dead-lettered"
        " + 0 expired (adds up)",
    ]


def test_kill_9_of_a_process_holding_a_batch_in_flight_another_delivers_it_after_the_lease(
    tmp_path: Path, redis_server: RedisServer, collector: Collector
) -> None:
    collector.default = Answer(delay_s=0.02)
    first = serve(tmp_path, "a", redis_server, collector)
    second = serve(tmp_path, "b", redis_server, collector)
    poster = Poster(first.base, second.base)
    poster.start()
    try:
        wait_until(lambda: len(poster.accepted) >= 100 and len(collector.requests) >= 3)
        collector.answer(Answer(delay_s=60.0))  # the next batch is received and never answered
        seen = len(collector.requests)
        wait_until(lambda: len(collector.requests) > seen)
        hung = collector.requests[seen].body["batch_id"]
        # redis-py types a reply as bytes | str | None whatever the client; this one answers bytes (the batch is there).
        owner = cast(bytes, redis_server.client().hget("{console-proxy}:batch:" + hung, "owner"))
        pid = int(owner.decode().split(":")[1])
        victim, survivor = (first, second) if pid == first.proc.pid else (second, first)
        assert pid == victim.proc.pid
        victim.stop(signal.SIGKILL)
        poster.bases = [survivor.base]
        accepted_at_kill = len(poster.accepted)
        wait_until(lambda: len(poster.accepted) >= accepted_at_kill + 50)
    finally:
        poster.finish()
    # A post in flight to the victim when it was killed: Redis may have taken it, the poster saw a reset.
    in_doubt = 5 * poster.statuses[0]
    try:
        collector.wait_for_events(len(poster.accepted), timeout=20)
        values = settled(survivor.base, len(poster.accepted), in_doubt=in_doubt)
        assert values["console_proxy_queue_reclaimed_batches_total"] >= 1
    finally:
        assert survivor.stop() == 0
        first.stop()
    check_delivery(collector, poster.accepted, in_doubt=in_doubt)
    # Sent by the victim (recorded, never answered in time) and again, whole, by the survivor after the lease.
    assert [r.body["batch_id"] for r in collector.requests].count(hung) == 2


def test_redis_restarted_under_load_loses_no_accepted_event(
    tmp_path: Path, redis_server: RedisServer, collector: Collector
) -> None:
    served = serve(tmp_path, "a", redis_server, collector, "--workers", "2")
    poster = Poster(served.base)
    poster.start()
    try:
        wait_until(lambda: len(poster.accepted) >= 100)
        redis_server.stop()
        wait_until(lambda: poster.statuses[503] >= 3)
        # The probe may reach the other worker than the poster's kept-alive connection did: that one notices
        # Redis is gone at its next poll.
        wait_until(lambda: httpx.get(served.base + "/readyz").status_code == 503)
        redis_server.start()  # the AOF (appendfsync always) brings back every accepted event
        before = len(poster.accepted)
        wait_until(lambda: len(poster.accepted) >= before + 100)
        wait_until(lambda: httpx.get(served.base + "/readyz").status_code == 200)
    finally:
        poster.finish()
    in_doubt = 5 * poster.statuses[503]  # a put Redis ran as it shut down, whose answer never came back
    try:
        collector.wait_for_events(len(poster.accepted), timeout=20)
        settled(served.base, len(poster.accepted), in_doubt=in_doubt)
    finally:
        assert served.stop() == 0
    assert set(poster.statuses) <= {202, 503}
    check_delivery(collector, poster.accepted, in_doubt=in_doubt)


def test_redis_down_answers_503_with_retry_after_and_readyz_not_ready_until_it_is_back(
    tmp_path: Path, redis_server: RedisServer, collector: Collector
) -> None:
    served = serve(tmp_path, "a", redis_server, collector)
    try:
        collector.down()
        assert httpx.post(served.base + EVENTS, json=batch("Down/A")).status_code == 202
        redis_server.stop()
        refused = httpx.post(served.base + EVENTS, json=batch("Down/B"))
        assert (refused.status_code, refused.headers["retry-after"], refused.json()) == (
            503,
            "5",
            {"error": "queue is unavailable"},
        )
        wait_until(lambda: httpx.get(served.base + "/readyz").status_code == 503)
        redis_server.start()
        wait_until(lambda: httpx.get(served.base + "/readyz").status_code == 200)
        collector.up()
        assert [e["event_type"] for e in collector.wait_for_events(1)] == ["Down/A"]
        values = settled(served.base, 1)
        assert values["console_proxy_batches_rejected_total{reason=queue_unavailable,source=console}"] == 1
    finally:
        assert served.stop() == 0
    assert "redis queue unavailable (ConnectionError" in served.output()


def test_the_collector_down_while_several_processes_write_loses_nothing(
    tmp_path: Path, redis_server: RedisServer, collector: Collector
) -> None:
    first = serve(tmp_path, "a", redis_server, collector, "--workers", "2")
    second = serve(tmp_path, "b", redis_server, collector)
    poster = Poster(first.base, second.base)
    poster.start()
    try:
        wait_until(lambda: len(poster.accepted) >= 50)
        collector.down()
        before = len(poster.accepted)
        wait_until(lambda: len(poster.accepted) >= before + 200)
        depth = metrics(second.base)["console_proxy_spool_events"]
        assert depth > 0
        collector.up()
        before = len(poster.accepted)
        wait_until(lambda: len(poster.accepted) >= before + 50)
    finally:
        poster.finish()
    try:
        collector.wait_for_events(len(poster.accepted), timeout=20)
        settled(first.base, len(poster.accepted))
        assert invariant_holds(metrics(second.base))
    finally:
        assert first.stop() == 0
        assert second.stop() == 0
    assert set(poster.statuses) == {202}
    check_delivery(collector, poster.accepted)


def test_serve_refuses_a_redis_without_appendonly_when_aof_is_required(tmp_path: Path, collector: Collector) -> None:
    with running_redis(tmp_path / "redis", appendonly="no") as server:
        served = serve(tmp_path, "a", server, collector, "--queue-require-aof", "true")
        assert served.proc.wait(10) == 4
    assert served.output().splitlines()[-1] == (
        f"--queue-require-aof: redis queue {server.url}: appendonly no, no snapshots: a Redis restart loses every "
        "queued event; refusing to start."
    )


def test_serve_starts_not_ready_while_redis_is_unreachable_and_logs_what_a_crash_can_lose_once_it_is(
    tmp_path: Path, collector: Collector
) -> None:
    server = RedisServer(tmp_path / "redis")
    (tmp_path / "a").mkdir()
    args = ("--upstream", collector.url, "--queue", server.url, "--server-uuid", SERVER_UUID, *FAST)
    served = start_serve(tmp_path / "a", *args, "--state-dir", str(tmp_path / "a" / "state"))
    STARTED.append(served)
    try:
        assert f"redis queue {server.url}: unreachable now (" in served.output()
        assert httpx.get(served.base + "/readyz").status_code == 503
        refused = httpx.post(served.base + EVENTS, json=batch("Early/A"))
        assert (refused.status_code, refused.headers["retry-after"]) == (503, "5")
        server.start()
        wait_until(lambda: httpx.get(served.base + "/readyz").status_code == 200)
        assert httpx.post(served.base + EVENTS, json=batch("Late/A")).status_code == 202
        assert [e["event_type"] for e in collector.wait_for_events(1)] == ["Late/A"]
    finally:
        assert served.stop() == 0
        server.stop()
    assert (
        served.output().count(
            f" INFO     redis queue {server.url}: appendonly yes, appendfsync always: a Redis crash can lose nothing "
            "acknowledged"
        )
        == 1
    )


def gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status  # exited, not yet reaped by whoever adopted it


def test_workers_exit_when_their_supervisor_is_killed(
    tmp_path: Path, redis_server: RedisServer, collector: Collector
) -> None:
    served = serve(tmp_path, "a", redis_server, collector, "--workers", "2")
    wait_until(lambda: "serving with 2 worker processes: " in served.output())
    line = next(line for line in served.output().splitlines() if "serving with 2 worker processes: " in line)
    workers = [int(pid) for pid in line.rsplit(": ", 1)[1].split()]
    assert len(workers) == 2 and not any(gone(pid) for pid in workers)
    served.stop(signal.SIGKILL)
    wait_until(lambda: all(gone(pid) for pid in workers))


def test_a_client_over_its_budget_gets_429_with_retry_after_and_nothing_of_it_is_kept(
    tmp_path: Path, redis_server: RedisServer, collector: Collector
) -> None:
    # Two workers, one budget: the put script takes it in Redis, whichever worker answers.
    served = serve(
        tmp_path, "a", redis_server, collector, "--workers", "2", "--client-rate", "1", "--client-burst", "45"
    )
    try:
        answers = [httpx.post(served.base + EVENTS, json=batch(*[f"B/E{i}-{k}" for k in range(20)])) for i in range(3)]
        assert [a.status_code for a in answers] == [202, 202, 429]
        assert (answers[2].headers["retry-after"], answers[2].json()) == (
            "20",
            {"error": "too many events from this client"},
        )
        # An invalid batch costs one event, charged by limits itself, from the same budget: 5 more fit in the 45.
        invalid = [httpx.post(served.base + EVENTS, content=b"{", headers={"content-type": "application/json"})]
        invalid += [httpx.post(served.base + EVENTS, content=b"{", headers={"content-type": "application/json"})]
        assert [a.status_code for a in invalid] == [400, 400]
        more = [httpx.post(served.base + EVENTS, json=batch(f"B/F{i}")) for i in range(4)]
        assert [a.status_code for a in more] == [202, 202, 202, 429]
        values = settled(served.base, 43)
        assert values["console_proxy_events_accepted_total"] == 43
        assert len(collector.wait_for_events(43)) == 43
    finally:
        assert served.stop() == 0

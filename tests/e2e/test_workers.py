"""`serve --workers 2` seen as one server: /metrics sums every worker's counters, /recent is the same whichever
worker answers, and the Redis group lists exactly the live workers, through a worker's `kill -9`.

Real parts: two uvicorn workers under uvicorn's own supervisor on one socket, a real redis-server, a real collector.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from support.collector import Collector, read_metrics
from support.redis_server import RedisServer
from support.servers import ServeProcess, start_serve

SERVER_UUID = "11111111-2222-4333-8444-555555555555"
EVENTS = "/_telemetry/v1/events"
FAST: tuple[str, ...] = ("--batch-max-events", "20", "--batch-max-delay-s", "0.05", "--queue-lease-s", "1")
FAST += ("--client-rate", "1000000", "--client-burst", "1000000")
N = 60


@pytest.fixture
def workers(tmp_path: Path, redis_server: RedisServer, collector: Collector) -> Iterator[ServeProcess]:
    served = start_serve(
        tmp_path,
        *("--upstream", collector.url, "--queue", redis_server.url, "--server-uuid", SERVER_UUID),
        *("--state-dir", str(tmp_path / "state"), "--workers", "2", *FAST),
        ready_path="/readyz",
    )
    try:
        yield served
    finally:
        assert served.stop() == 0


def wait_until(condition: Callable[[], bool], timeout_s: float = 30.0, state: Callable[[], object] = str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"the condition never held: {state()}"
        time.sleep(0.05)


def scrape(base: str) -> dict[str, float]:
    # A connection of its own each time: the kernel hands it to either worker.
    response = httpx.get(base + "/metrics", headers={"connection": "close"})
    assert response.status_code == 200
    return read_metrics(response.text)


def worker_pids(served: ServeProcess) -> list[int]:
    found = re.findall(r"serving with 2 worker processes: (\d+) (\d+)", served.output())
    assert found, served.output()
    return [int(pid) for pid in found[-1]]


def consumers(redis: RedisServer) -> list[str]:
    client = redis.client()
    try:
        rows = client.xinfo_consumers("{console-proxy}:stream", "forwarders")
    finally:
        client.close()
    return sorted(row["name"].decode() if isinstance(row["name"], bytes) else row["name"] for row in rows)


def test_every_scrape_and_every_recent_shows_both_workers_events(workers: ServeProcess, collector: Collector) -> None:
    for i in range(N // 2):
        batch = {"events": [{"type": f"W/E{i}A", "route": "/console/data"}, {"type": f"W/E{i}B", "route": "/"}]}
        response = httpx.post(workers.base + EVENTS, json=batch, headers={"connection": "close"})
        assert response.status_code == 202
    assert len(collector.wait_for_events(N)) == N
    # Each worker writes its counters as it counts: the first scrape already shows them all.
    totals = [scrape(workers.base)["console_proxy_events_received_total{source=console}"] for _ in range(10)]
    print(f"\n/metrics under --workers 2 after {N} events, ten scrapes: {totals}")
    assert totals == [N] * 10
    requests = scrape(workers.base)["console_proxy_http_requests_total{path=events,status=202}"]
    assert requests == N // 2
    answers = [httpx.get(workers.base + "/_telemetry/v1/recent", headers={"connection": "close"}) for _ in range(10)]
    shown = [[e["event_type"] for e in a.json()] for a in answers]
    assert all(s == shown[0] for s in shown)
    assert sorted(shown[0]) == sorted(f"W/E{i}{x}" for i in range(N // 2) for x in "AB")


def test_the_group_lists_the_live_workers_through_a_kill_9(workers: ServeProcess, redis_server: RedisServer) -> None:
    first = worker_pids(workers)
    # Each worker is in the group from its start, before it claims anything.
    wait_until(
        lambda: sorted(int(name.split(":")[1]) for name in consumers(redis_server)) == sorted(first),
        state=lambda: (first, consumers(redis_server), workers.output()),
    )
    seen = [len(consumers(redis_server))]
    victim, survivor = first
    os.kill(victim, signal.SIGKILL)
    # uvicorn's supervisor starts another; the dead one leaves the group once its 1 s lease ran out.

    def live() -> list[int]:
        return sorted(int(name.split(":")[1]) for name in consumers(redis_server))

    def settled() -> bool:
        names = live()
        seen.append(len(names))
        replaced = f"Child process [{victim}] died" in workers.output()
        return replaced and len(names) == 2 and victim not in names and survivor in names

    wait_until(settled)
    print(f"\nconsumers through a worker's kill -9 (one reading every 50 ms, repeats folded): {fold(seen)}")
    assert seen[0] == 2 and seen[-1] == 2 and victim not in live()


def fold(values: list[int]) -> list[int]:
    return [v for i, v in enumerate(values) if i == 0 or values[i - 1] != v]

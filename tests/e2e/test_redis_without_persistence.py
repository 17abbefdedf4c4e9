"""A real redis-server without persistence (appendonly no, no snapshots) under `console-proxy serve`: the warning
while it is so, the loss a restart makes said and counted as lost, one line per outage and one per recovery."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from console_proxy.delivery.redis.queue import RedisQueue

from support.collector import Collector, invariant_holds, read_metrics
from support.redis_server import running_redis
from support.servers import start_serve

SERVER_UUID = "11111111-2222-4333-8444-555555555555"
EVENTS = "/_telemetry/v1/events"
FAST = ("--batch-max-events", "20", "--batch-max-delay-s", "0.05", "--retry-base-s", "0.05", "--retry-cap-s", "0.2")
OUTAGE_S = 3.0  # long enough for a line five times a second to show as fifteen


@pytest.fixture
def collector() -> Iterator[Collector]:
    with Collector() as c:
        yield c


def batch(tag: str) -> list[dict[str, str]]:
    return [{"type": f"Loss/{tag}_{i}", "route": "/console/data"} for i in range(10)]


def wait_until(condition: object, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_restart_without_persistence_is_said_once_and_counted_as_lost(tmp_path: Path, collector: Collector) -> None:
    collector.down()  # what is accepted stays queued in Redis
    with running_redis(tmp_path / "redis", appendonly="no") as redis:
        args = ("--upstream", collector.url, "--queue", redis.url, "--server-uuid", SERVER_UUID, *FAST)
        served = start_serve(tmp_path, *args, "--state-dir", str(tmp_path / "state"))
        try:
            assert [httpx.post(served.base + EVENTS, json=batch(f"B{i}")).status_code for i in range(5)] == [202] * 5
            redis.stop()
            during = [httpx.post(served.base + EVENTS, json=batch(f"D{i}")).status_code for i in range(3)]
            time.sleep(OUTAGE_S)  # the outage itself: what is logged while it lasts
            redis.start()  # empty: it kept nothing
            wait_until(lambda: "the redis queue lost its data" in served.output())
            values = read_metrics(httpx.get(served.base + "/metrics").text)
            after = httpx.post(served.base + EVENTS, json=batch("AFTER")).status_code
            collector.up()
            delivered = collector.wait_for_events(10)
        finally:
            code = served.stop()
    output = served.output()
    print("\n".join(line for line in output.splitlines() if "redis" in line or "lost" in line))
    assert (during, after, code) == ([503] * 3, 202, 0)
    assert (values["console_proxy_events_lost_total"], values["console_proxy_events_accepted_total"]) == (50, 50)
    assert invariant_holds(values)
    assert [e["event_type"].split("_")[0] for e in delivered] == ["Loss/AFTER"] * 10
    assert output.count("50 accepted events that were queued are gone, counted as lost") == 1
    assert output.count("redis queue unavailable") == 1 and output.count("redis queue reachable again") == 1
    assert output.count("client budgets unavailable") <= 1 and "forwarding paused" not in output
    assert output.count("appendonly no, no snapshots: a Redis restart loses every queued event") == 1
    assert "Traceback" not in output


@pytest.mark.anyio
@pytest.mark.parametrize(("appendonly", "warnings"), [("no", 3), ("yes", 0)])
async def test_the_warning_recurs_while_redis_keeps_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, appendonly: str, warnings: int
) -> None:
    with running_redis(tmp_path / "redis", appendonly=appendonly) as redis:
        queue = RedisQueue(redis.url, max_events=100, max_bytes=10**6, max_age_s=60, persistence_every_s=0.2)
        with caplog.at_level(logging.INFO, logger="console_proxy"):
            await queue.open()
            try:
                # Polls, as the queue's watch does every half second; 0.2 s apart each time.
                for _ in range(2):
                    await anyio.sleep(0.25)
                    await queue.poll()
            finally:
                await queue.close()
    said = [r for r in caplog.records if "redis queue" in r.getMessage() and r.levelno == logging.WARNING]
    assert len(said) == warnings, [r.getMessage() for r in caplog.records]

"""The forwarding sink on the SQLite spool against a real collector and a real spool file: outages, a full spool,
shutdown, restarts."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from console_proxy.core.events import ConsoleEvent
from console_proxy.core.settings import Settings
from console_proxy.delivery.factory import spool_queue
from console_proxy.delivery.forwarding import ForwardingSink
from console_proxy.delivery.sink import SinkRefused

from support.collector import Collector, invariant_holds, read_metrics
from support.outbound import event

pytestmark = pytest.mark.anyio


def batches(count: int, size: int, start: int = 0) -> list[list[ConsoleEvent]]:
    return [[event(start + b * size + k) for k in range(size)] for b in range(count)]


async def no_sleep_long(seconds: float) -> None:
    """Backoff shortened for tests: the real sleep, at most 50 ms."""
    await asyncio.sleep(min(seconds, 0.05))


@pytest.fixture
def collector() -> Iterator[Collector]:
    with Collector() as c:
        yield c


def settings_for(collector: Collector, **overrides: Any) -> Settings:
    base = Settings(
        upstream=collector.url,
        batch_max_events=50,
        batch_max_delay_s=0.05,
        retry_base_s=0.01,
        retry_cap_s=0.05,
        upstream_timeout_s=1.0,
        shutdown_grace_s=2.0,
    )
    return dataclasses.replace(base, **overrides)


def sink_for(
    tmp_path: Path, settings: Settings, *, clock: Callable[[], float] = time.time, **kwargs: Any
) -> ForwardingSink:
    queue = spool_queue(settings, tmp_path / "spool.db", clock=clock)
    return ForwardingSink(settings, queue, clock=clock, sleep=no_sleep_long, **kwargs)


async def scrape(sink: ForwardingSink) -> dict[str, float]:
    return read_metrics((await sink.metrics.render_async()).decode())


async def test_events_accepted_during_an_outage_are_all_delivered_when_the_collector_returns(
    tmp_path: Path, collector: Collector
) -> None:
    collector.down()
    sink = sink_for(tmp_path, settings_for(collector))
    await sink.start()
    try:
        for batch in batches(10, 7):
            await sink.put("console", batch)
        during = await scrape(sink)
        assert (during["console_proxy_events_accepted_total"], during["console_proxy_spool_events"]) == (70, 70)
        assert invariant_holds(during)
        collector.up()
        events = await collector.events_soon(70)
        assert sorted(e["event_id"] for e in events) == sorted(e["event_id"] for b in batches(10, 7) for e in b)
        await sink.forwarder.drain()
        after = await scrape(sink)
        assert (after["console_proxy_events_forwarded_total"], after["console_proxy_spool_events"]) == (70, 0)
        assert after["console_proxy_upstream_retries_total"] >= 1
        assert after["console_proxy_last_delivery_timestamp_seconds"] > 0
        assert invariant_holds(after)
    finally:
        await sink.aclose()


async def test_a_full_batch_a_put_claimed_is_sent_without_waiting_for_the_delay(
    tmp_path: Path, collector: Collector
) -> None:
    # The forwarder waits for a full batch for an hour; the put that fills it claims it, and the forwarder,
    # woken, sends it at once rather than at the end of its wait.
    sink = sink_for(tmp_path, settings_for(collector, batch_max_events=10, batch_max_delay_s=3600.0))
    await sink.start()
    try:
        await sink.put("console", [event(k) for k in range(10)])
        assert len(await collector.events_soon(10)) == 10  # the first claim, by the forwarder: its size is known
        await sink.put("console", [event(k) for k in range(10, 14)])
        await sink.put("console", [event(k) for k in range(14, 22)])  # fills a batch of 10; 2 left over
        events = await collector.events_soon(20)
        assert sorted(e["event_id"] for e in events) == sorted(event(k)["event_id"] for k in range(20))
        assert [len(r.body["data"]) for r in collector.delivered()] == [10, 10]  # the 2 left wait for more
    finally:
        await sink.aclose(drain=False)


async def test_a_full_spool_refuses_with_503_and_evicts_nothing(tmp_path: Path, collector: Collector) -> None:
    collector.down()
    sink = sink_for(tmp_path, settings_for(collector, spool_max_events=25))
    await sink.start()
    try:
        for batch in batches(5, 5):
            await sink.put("console", batch)
        with pytest.raises(SinkRefused) as refused:
            await sink.put("console", [event(999)])
        assert (refused.value.status, refused.value.retry_after, refused.value.reason, refused.value.label) == (
            503,
            5,
            "spool is full",
            "spool_full",
        )
        values = await scrape(sink)
        assert (values["console_proxy_events_accepted_total"], values["console_proxy_spool_events"]) == (25, 25)
        assert invariant_holds(values)
        collector.up()
        events = await collector.events_soon(25)
        assert sorted(e["event_id"] for e in events) == sorted(e["event_id"] for b in batches(5, 5) for e in b)
    finally:
        await sink.aclose()


async def test_shutdown_refuses_new_batches_and_flushes_what_is_spooled(tmp_path: Path, collector: Collector) -> None:
    sink = sink_for(tmp_path, settings_for(collector, batch_max_delay_s=30.0))
    await sink.start()
    await sink.put("console", batches(1, 3)[0])
    await sink.aclose()
    assert [e["event_id"] for e in collector.delivered_events()] == [e["event_id"] for e in batches(1, 3)[0]]
    assert not sink.ready()
    with pytest.raises(SinkRefused) as refused:
        await sink.put("console", [event(5)])
    assert (refused.value.status, refused.value.reason) == (503, "shutting down")


async def test_what_shutdown_cannot_flush_is_sent_at_the_next_start(tmp_path: Path, collector: Collector) -> None:
    collector.down()
    settings = settings_for(collector, shutdown_grace_s=0.2)
    first = sink_for(tmp_path, settings)
    await first.start()
    for batch in batches(3, 4):
        await first.put("console", batch)
    await first.aclose()
    assert first.queue.depth == 12
    collector.up()
    second = sink_for(tmp_path, settings)
    await second.start()
    try:
        events = await collector.events_soon(12)
        assert sorted(e["event_id"] for e in events) == sorted(e["event_id"] for b in batches(3, 4) for e in b)
        await second.forwarder.drain()
        values = await scrape(second)
        assert (values["console_proxy_events_accepted_total"], values["console_proxy_events_forwarded_total"]) == (
            12,
            12,
        )
        assert invariant_holds(values)
    finally:
        await second.aclose()


async def test_events_past_the_maximum_age_expire_at_start_and_are_counted(
    tmp_path: Path, collector: Collector
) -> None:
    collector.down()
    now = [1_000_000.0]
    settings = settings_for(collector, spool_max_age_s=3600.0, shutdown_grace_s=0.1)
    first = sink_for(tmp_path, settings, clock=lambda: now[0])
    await first.start()
    await first.put("console", batches(1, 4)[0])
    await first.aclose()
    now[0] += 3601.0
    second = sink_for(tmp_path, settings, clock=lambda: now[0])
    await second.start()
    try:
        await second.put("console", [event(100)])
        collector.up()
        assert [e["event_id"] for e in await collector.events_soon(1)] == [event(100)["event_id"]]
        await second.forwarder.drain()
        values = await scrape(second)
        assert (values["console_proxy_events_expired_total"], values["console_proxy_events_forwarded_total"]) == (4, 1)
        assert invariant_holds(values)
    finally:
        await second.aclose()
    assert len(collector.delivered_events()) == 1


async def test_an_unwritable_spool_is_not_ready_and_answers_503(tmp_path: Path, collector: Collector) -> None:
    (tmp_path / "file").write_text("x")
    sink = sink_for(tmp_path / "file", settings_for(collector))
    await sink.start()
    try:
        assert not sink.ready()
        with pytest.raises(SinkRefused) as refused:
            await sink.put("console", [event(1)])
        assert (refused.value.status, refused.value.reason, refused.value.label) == (
            503,
            "spool is unwritable",
            "spool_unwritable",
        )
    finally:
        await sink.aclose()
    assert collector.connections == 0


async def test_not_ready_while_the_spool_has_no_room_for_a_batch(tmp_path: Path, collector: Collector) -> None:
    collector.down()
    sink = sink_for(tmp_path, settings_for(collector, spool_max_events=55))
    await sink.start()
    try:
        assert sink.ready()
        for batch in batches(10, 5):
            await sink.put("console", batch)
        assert sink.ready()  # 50 spooled: room for a batch like the largest seen, 5 events
        await sink.put("console", [event(999)])
        assert not sink.ready()  # 51: a batch of 5 would get 503
        collector.up()
        await collector.events_soon(51)
        await sink.forwarder.drain()
        assert sink.ready()
    finally:
        await sink.aclose()

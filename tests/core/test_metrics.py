"""Metrics: a registry per app, ingest counters by reason, and the delivery invariant at every scrape."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import prometheus_client
import pytest

from console_proxy.core.accounting import TopicAccount
from console_proxy.core.metrics import MULTIPROCESS_ENV, Metrics, QueueStats
from console_proxy.delivery.spool.spool import Spool

from support.collector import invariant_holds, read_metrics
from support.outbound import event

pytestmark = pytest.mark.anyio

# Shown in every scrape: tested on their own below.
OTHER = ("console_proxy_upstream_retries", "console_proxy_build_info")


async def scrape(metrics: Metrics) -> dict[str, float]:
    return read_metrics((await metrics.render_async()).decode())


async def test_each_app_has_its_own_registry_and_the_global_one_is_untouched() -> None:
    first, second = Metrics(), Metrics()
    first.received(3)
    first.retried()
    assert (await scrape(first))["console_proxy_events_received_total{source=console}"] == 3
    assert "console_proxy_events_received_total{source=console}" not in await scrape(second)
    assert (await scrape(second))["console_proxy_upstream_retries_total"] == 0
    assert b"console_proxy" not in prometheus_client.generate_latest(prometheus_client.REGISTRY)


async def test_ingest_counts_by_reason_add_up_whoever_reports_them() -> None:
    metrics = Metrics()
    metrics.rejected("malformed")
    metrics.rejected("malformed")
    metrics.dropped("action_dropped", 4)
    metrics.rejected("spool_full")
    metrics.rejected("malformed")
    metrics.dropped("bad_route", 2)
    metrics.received(9)
    metrics.accepted(3)
    values = await scrape(metrics)
    assert {
        k: v
        for k, v in values.items()
        if k.startswith("console_proxy_") and not k.startswith(OTHER) and "_created" not in k
    } == {
        "console_proxy_events_received_total{source=console}": 9,
        "console_proxy_batches_rejected_total{reason=malformed,source=console}": 3,
        "console_proxy_batches_rejected_total{reason=spool_full,source=console}": 1,
        "console_proxy_events_dropped_total{reason=action_dropped,source=console}": 4,
        "console_proxy_events_dropped_total{reason=bad_route,source=console}": 2,
        "console_proxy_events_accepted_total{source=console}": 3,
        "console_proxy_rules_reloads_total{outcome=ok}": 0,
        "console_proxy_rules_reloads_total{outcome=refused}": 0,
    }


async def test_upstream_latency_is_a_histogram_by_status() -> None:
    metrics = Metrics()
    metrics.observe_upstream(0.02, 200)
    metrics.observe_upstream(3.0, 503)
    values = await scrape(metrics)
    assert values["console_proxy_upstream_latency_seconds_count{status=200}"] == 1
    assert values["console_proxy_upstream_latency_seconds_bucket{le=0.025,status=200}"] == 1
    assert values["console_proxy_upstream_latency_seconds_bucket{le=2.5,status=503}"] == 0
    assert values["console_proxy_upstream_latency_seconds_sum{status=503}"] == 3.0


async def test_with_a_spool_the_delivery_figures_come_from_it() -> None:
    metrics = Metrics()
    metrics.accepted(99)  # this process's count gives way to the spool's lifetime count
    metrics.attach_spool(
        lambda: QueueStats(
            accepted=10,
            forwarded=4,
            dead_lettered=1,
            expired=2,
            spooled=3,
            spooled_bytes=300,
            last_delivery_at=1_795_000_000.5,
        )
    )
    values = await scrape(metrics)
    assert {
        k: v
        for k, v in values.items()
        if k.startswith(("console_proxy_events_", "console_proxy_spool", "console_proxy_last"))
    } == {
        "console_proxy_events_accepted_total": 10,
        "console_proxy_events_forwarded_total": 4,
        "console_proxy_events_dead_lettered_total": 1,
        "console_proxy_events_expired_total": 2,
        "console_proxy_events_lost_total": 0,
        "console_proxy_spool_events": 3,
        "console_proxy_spool_bytes": 300,
        "console_proxy_last_delivery_timestamp_seconds": 1_795_000_000.5,
    }


async def test_the_accounting_per_topic_is_in_the_scrape_with_its_gap() -> None:
    metrics = Metrics()
    topics = (
        TopicAccount("cli", accepted=4, stored=2, uncounted=1),
        TopicAccount("console", accepted=10, stored=5, duplicates=2, rejected=1, dead_lettered=1, queued=1),
    )
    metrics.attach_spool(lambda: QueueStats(14, 8, 1, 0, 1, 100, None, topics=topics))
    values = await scrape(metrics)
    assert values["console_proxy_topic_events_accepted_total{topic=console}"] == 10
    assert values["console_proxy_upstream_events_total{outcome=stored,topic=console}"] == 5
    assert values["console_proxy_upstream_events_total{outcome=duplicates,topic=console}"] == 2
    assert values["console_proxy_upstream_events_total{outcome=rejected,topic=console}"] == 1
    assert values["console_proxy_upstream_events_total{outcome=dead_lettered,topic=console}"] == 1
    assert values["console_proxy_upstream_events_total{outcome=uncounted,topic=cli}"] == 1
    assert values["console_proxy_topic_events_queued{topic=console}"] == 1
    assert values["console_proxy_accounting_gap_events{topic=console}"] == 0
    assert values["console_proxy_accounting_gap_events{topic=cli}"] == 1  # one accepted event nothing explains
    for topic in ("cli", "console"):
        outcomes = sum(
            v
            for k, v in values.items()
            if k.startswith("console_proxy_upstream_events_total") and f"topic={topic}" in k
        )
        assert values[f"console_proxy_topic_events_accepted_total{{topic={topic}}}"] == (
            outcomes
            + values[f"console_proxy_topic_events_queued{{topic={topic}}}"]
            + values[f"console_proxy_accounting_gap_events{{topic={topic}}}"]
        )


async def test_an_unreadable_spool_leaves_the_delivery_figures_out_and_the_scrape_working(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = Metrics()

    def broken() -> QueueStats:
        raise OSError("disk gone")

    metrics.attach_spool(broken)
    metrics.received(1)
    values = await scrape(metrics)
    assert values["console_proxy_events_received_total{source=console}"] == 1
    assert not any(key.startswith("console_proxy_events_accepted_total") for key in values)
    assert "cannot read the spool for metrics: disk gone" in caplog.text


async def test_the_invariant_holds_at_every_scrape_while_the_spool_changes(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", max_events=100_000, max_bytes=10**9, max_age_s=3600.0)
    await spool.open()
    metrics = Metrics()
    metrics.attach_spool(spool.stats)
    scrapes: list[dict[str, float]] = []
    busy = True

    async def churn() -> None:
        n = 0
        for round_ in range(40):
            await asyncio.gather(*(spool.put("console", [event(n + k), event(n + k + 1)]) for k in range(0, 10, 2)))
            n += 10
            batch = await spool.claim(7)
            assert batch is not None
            if round_ % 5 == 4:
                await spool.dead_letter(batch.batch_id, 400)
            else:
                await spool.ack(batch.batch_id)

    async def watch() -> None:
        while busy:
            scrapes.append(await scrape(metrics))

    try:
        watcher = asyncio.ensure_future(watch())
        await churn()
        busy = False
        await watcher
        scrapes.append(await scrape(metrics))
    finally:
        await spool.close()
    assert len(scrapes) > 5
    assert all(invariant_holds(values) for values in scrapes)
    final = scrapes[-1]
    assert (
        final["console_proxy_events_accepted_total"],
        final["console_proxy_events_forwarded_total"],
        final["console_proxy_events_dead_lettered_total"],
        final["console_proxy_spool_events"],
    ) == (400, 32 * 7, 8 * 7, 400 - 40 * 7)


async def test_every_scrape_shows_the_build_and_the_process() -> None:
    values = await scrape(Metrics())
    [build] = [k for k in values if k.startswith("console_proxy_build_info")]
    assert build.startswith("console_proxy_build_info{python=3.") and values[build] == 1
    assert values["process_cpu_seconds_total"] > 0 and values["process_open_fds"] > 0


def test_counters_of_every_process_writing_one_directory_are_summed(tmp_path: Path) -> None:
    # Each worker of `serve --workers N` is a process of its own: their files in the directory are what a scrape
    # of any of them reads. Two processes that write there, and a reader that wrote nothing, see the sum.
    script = (
        "import sys; from console_proxy.core.metrics import Metrics; m = Metrics();"
        " m.received(int(sys.argv[1])); m.rejected('spool_full'); m.request('events', 202)"
    )
    env = {**os.environ, MULTIPROCESS_ENV: str(tmp_path)}
    for n in (3, 4):
        subprocess.run([sys.executable, "-c", script, str(n)], env=env, check=True)
    reader = subprocess.run(
        [sys.executable, "-c", "from console_proxy.core.metrics import Metrics; print(Metrics().render().decode())"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    values = read_metrics(reader.stdout)
    assert values["console_proxy_events_received_total{source=console}"] == 7
    assert values["console_proxy_batches_rejected_total{reason=spool_full,source=console}"] == 2
    assert values["console_proxy_http_requests_total{path=events,status=202}"] == 2
    assert not any(k.startswith("process_") for k in values)  # it could only show the answering worker


def test_a_refusal_of_each_kind_is_logged_then_a_line_a_minute_with_its_count(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    metrics = Metrics(clock=lambda: now[0])
    for _ in range(3):
        metrics.rejected("spool_full")
    metrics.rejected("foreign_origin")
    now[0] = 61.0
    metrics.rejected("spool_full")
    assert [r.getMessage() for r in caplog.records] == [
        "refused a batch: spool_full",
        "refused a batch: foreign_origin",
        "refused a batch: spool_full (and 2 more like it in the last minute)",
    ]

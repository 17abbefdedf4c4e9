"""The forwarder against a real collector (and httpx.MockTransport for the backoff arithmetic alone)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from console_proxy.core.events import OutboundEvent
from console_proxy.core.settings import Settings
from console_proxy.delivery.forwarder import (
    USER_AGENT,
    Forwarder,
    Verdict,
    backoff_delay,
    parse_retry_after,
    stop_task,
    verdict,
)
from console_proxy.delivery.spool.spool import Spool

from support.collector import Answer, Collector
from support.outbound import event

pytestmark = pytest.mark.anyio

NOW = 1_795_000_000.0  # 2026-11-18T11:06:40Z: the clock the Retry-After dates are read against


class Sleeps:
    """An injected sleep that records the delays and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def highest(lo: float, hi: float) -> float:
    return hi


@pytest.fixture
def collector() -> Iterator[Collector]:
    with Collector() as c:
        yield c


@contextlib.asynccontextmanager
async def forwarding(
    tmp_path: Path,
    upstream: str,
    sleeps: Sleeps,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    **overrides: Any,
) -> AsyncIterator[tuple[Spool, Forwarder]]:
    settings = Settings(
        upstream=upstream,
        batch_max_events=overrides.pop("batch_max_events", 100),
        batch_max_delay_s=0.02,
        retry_base_s=0.01,
        retry_cap_s=overrides.pop("retry_cap_s", 30.0),
        upstream_timeout_s=overrides.pop("upstream_timeout_s", 2.0),
        upstream_token_file=overrides.pop("upstream_token_file", None),
    )
    spool = Spool(tmp_path / "spool.db", max_events=10_000, max_bytes=10**8, max_age_s=3600.0)
    await spool.open()
    forwarder = Forwarder(spool, settings, transport=transport, clock=lambda: NOW, sleep=sleeps, jitter=highest)
    await forwarder.start()
    try:
        yield spool, forwarder
    finally:
        await forwarder.aclose()
        await spool.close()


async def send(spool: Spool, forwarder: Forwarder, events: Sequence[OutboundEvent]) -> None:
    await spool.put("console", events)
    forwarder.wake()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("7", 7.0),
        (" 0 ", 0.0),
        ("Wed, 18 Nov 2026 11:07:00 GMT", 1_795_000_020.0 - NOW),
        ("Wed, 18 Nov 2026 11:05:40 GMT", 0.0),
        ("soon", None),
        ("-3", None),
        ("\u00b2", None),
        ("Wed, 18 Nov 2026 11:07:00", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, NOW) == expected


@pytest.mark.parametrize(
    ("attempt", "retry_after", "expected"),
    [
        (0, None, 0.5),
        (3, None, 4.0),
        (7, None, 60.0),
        (500, None, 60.0),
        (0, 9.0, 9.0),
        (5, 3.0, 16.0),
        (0, 3600.0, 60.0),
    ],
)
def test_backoff_is_exponential_capped_and_never_sooner_than_retry_after(
    attempt: int, retry_after: float | None, expected: float
) -> None:
    assert backoff_delay(attempt, base_s=0.5, cap_s=60.0, retry_after_s=retry_after, jitter=highest) == expected


def test_backoff_jitter_spans_zero_to_the_exponential_delay() -> None:
    seen: list[tuple[float, float]] = []

    def record(lo: float, hi: float) -> float:
        seen.append((lo, hi))
        return lo

    assert backoff_delay(2, base_s=1.0, cap_s=60.0, retry_after_s=None, jitter=record) == 0.0
    assert seen == [(0.0, 4.0)]


@pytest.mark.parametrize(
    ("status", "count", "expected"),
    [
        (200, 5, Verdict.DELIVERED),
        (202, 1, Verdict.DELIVERED),
        (299, 5, Verdict.DELIVERED),
        (100, 5, Verdict.RETRY),
        (301, 5, Verdict.RETRY),
        (307, 5, Verdict.RETRY),
        (408, 5, Verdict.RETRY),
        (429, 5, Verdict.RETRY),
        (500, 5, Verdict.RETRY),
        (503, 1, Verdict.RETRY),
        (599, 5, Verdict.RETRY),
        (413, 2, Verdict.SPLIT),
        (413, 1, Verdict.DEAD_LETTER),
        (400, 5, Verdict.DEAD_LETTER),
        (401, 5, Verdict.UNAUTHORIZED),
        (403, 1, Verdict.UNAUTHORIZED),
        (404, 5, Verdict.DEAD_LETTER),
        (409, 5, Verdict.DEAD_LETTER),
        (422, 1, Verdict.DEAD_LETTER),
    ],
)
def test_the_verdict_on_each_answer(status: int, count: int, expected: Verdict) -> None:
    assert verdict(status, count) is expected


async def test_drain_waits_on_the_forwarder_never_on_the_real_clock(
    tmp_path: Path, collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    collector.answer(Answer(503), Answer(503))
    sleeps = Sleeps()
    async with forwarding(tmp_path, collector.url, sleeps) as (spool, forwarder):
        await spool.put("console", [event(1), event(2)])

        async def real_sleep_called(seconds: float) -> None:
            raise AssertionError(f"asyncio.sleep({seconds}) called: time that a test cannot drive")

        # Everything the forwarder waits on during a drain is its own work or the injected sleep.
        monkeypatch.setattr(asyncio, "sleep", real_sleep_called)
        await forwarder.drain()
        monkeypatch.undo()
        assert spool.stats().forwarded == 2
    assert sleeps.delays == [0.01, 0.02]


async def test_a_batch_is_posted_as_designed_and_removed_after_the_2xx(tmp_path: Path, collector: Collector) -> None:
    sleeps = Sleeps()
    # A generous deadline: on a busy machine a 2 s attempt could time out after the collector took the batch,
    # and the retry that follows is right, but not what this test is about.
    async with forwarding(tmp_path, collector.url, sleeps, upstream_timeout_s=60.0) as (spool, forwarder):
        await send(spool, forwarder, [event(1), event(2)])
        assert await collector.events_soon(2) == [event(1), event(2)]
        request = collector.delivered()[0]
        assert request.path == "/v1/collect"
        assert request.body == {
            "topic": "console",
            "batch_id": request.headers["idempotency-key"],
            "data": [event(1), event(2)],
        }
        assert request.headers["content-type"] == "application/json"
        assert request.headers["user-agent"] == USER_AGENT == "console-proxy/0.2.0"
        assert "cookie" not in request.headers and "x-forwarded-for" not in request.headers
        await forwarder.drain()
        assert spool.stats().forwarded == 2 and spool.depth == 0
    assert sleeps.delays == []


@pytest.mark.parametrize(
    "failure",
    [
        Answer(500),
        Answer(502),
        Answer(503),
        Answer(504),
        Answer(408),
        Answer(429),
        Answer(307),
        Answer(reset=True),
    ],
)
async def test_retryable_failures_are_retried_with_the_same_batch_id_and_event_ids(
    tmp_path: Path, collector: Collector, failure: Answer
) -> None:
    collector.answer(failure, failure)
    sleeps = Sleeps()
    # No answer here waits for the deadline, so it is far away: a loaded machine must not turn a slow good answer
    # into a third failure (a 1 s deadline did, once, in a full run on a busy machine).
    async with forwarding(tmp_path, collector.url, sleeps, upstream_timeout_s=30.0) as (spool, forwarder):
        await send(spool, forwarder, [event(1), event(2), event(3)])
        assert await collector.events_soon(3) == [event(1), event(2), event(3)]
        assert sleeps.delays == [0.01, 0.02]
        assert len({r.headers["idempotency-key"] for r in collector.requests}) == 1
        assert [r.body["data"] for r in collector.requests] == [[event(1), event(2), event(3)]] * 3
        assert spool.stats().dead_lettered == 0


async def test_an_attempt_past_its_deadline_is_retried_with_the_same_batch_id(
    tmp_path: Path, collector: Collector
) -> None:
    collector.answer(Answer(hang_s=30.0))
    sleeps = Sleeps()
    async with forwarding(tmp_path, collector.url, sleeps, upstream_timeout_s=1.0) as (spool, forwarder):
        await send(spool, forwarder, [event(1), event(2)])
        assert await collector.events_soon(2) == [event(1), event(2)]
        # The hung attempt was cut at the deadline and retried. A good answer slowed past the deadline by a busy
        # machine is retried too (delivery is at least once), so the count of retries is not fixed here: each
        # retry is one more request, all of them the same batch.
        assert collector.requests[0].status is None
        assert sleeps.delays[0] == 0.01
        assert len(collector.requests) == len(sleeps.delays) + 1
        assert len({r.headers["idempotency-key"] for r in collector.requests}) == 1
        assert [r.body["data"] for r in collector.requests] == [[event(1), event(2)]] * len(collector.requests)


@pytest.mark.parametrize("status", [400, 404, 422])
async def test_other_4xx_are_dead_lettered_without_retry(tmp_path: Path, collector: Collector, status: int) -> None:
    collector.answer(Answer(status))
    sleeps = Sleeps()
    async with forwarding(tmp_path, collector.url, sleeps) as (spool, forwarder):
        await send(spool, forwarder, [event(1), event(2)])
        await forwarder.drain()
        await send(spool, forwarder, [event(3)])
        assert await collector.events_soon(1) == [event(3)]
        await forwarder.drain()  # the collector has answered; the spool's ack may still be on its way
        stats = spool.stats()
        assert (stats.dead_lettered, stats.forwarded, stats.spooled) == (2, 1, 0)
    assert sleeps.delays == []
    assert len(collector.requests) == 2


async def test_retry_after_is_honoured_in_seconds_and_as_a_date(tmp_path: Path, collector: Collector) -> None:
    collector.answer(
        Answer(503, retry_after="7"),
        Answer(429, retry_after="Wed, 18 Nov 2026 11:07:00 GMT"),
        Answer(500, retry_after="3600"),
    )
    sleeps = Sleeps()
    async with forwarding(tmp_path, collector.url, sleeps, retry_cap_s=120.0) as (spool, forwarder):
        await send(spool, forwarder, [event(1)])
        assert await collector.events_soon(1) == [event(1)]
    assert sleeps.delays == [7.0, 20.0, 120.0]


async def test_batches_hold_at_most_batch_max_events(tmp_path: Path, collector: Collector) -> None:
    sleeps = Sleeps()
    async with forwarding(tmp_path, collector.url, sleeps, batch_max_events=4) as (spool, forwarder):
        await send(spool, forwarder, [event(i) for i in range(10)])
        assert await collector.events_soon(10) == [event(i) for i in range(10)]
    assert [len(r.body["data"]) for r in collector.requests] == [4, 4, 2]


async def test_a_collectors_cookie_is_never_sent_back(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, headers={"set-cookie": "session=abc; Path=/"})

    sleeps = Sleeps()
    async with forwarding(tmp_path, "http://collector.test/v1", sleeps, transport=httpx.MockTransport(handler)) as (
        spool,
        forwarder,
    ):
        for i in range(3):
            await send(spool, forwarder, [event(i)])
            await forwarder.drain()
    assert len(seen) == 3
    assert [r.headers.get("cookie") for r in seen] == [None, None, None]
    assert [json.loads(r.content)["data"] for r in seen] == [[event(0)], [event(1)], [event(2)]]


async def test_backoff_grows_until_the_cap_while_the_collector_fails(tmp_path: Path) -> None:
    answers = iter([500] * 12 + [200])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(next(answers))

    sleeps = Sleeps()
    async with forwarding(
        tmp_path, "http://collector.test/v1", sleeps, retry_cap_s=5.0, transport=httpx.MockTransport(handler)
    ) as (spool, forwarder):
        await send(spool, forwarder, [event(1)])
        await forwarder.drain()
    assert sleeps.delays == [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.0, 5.0, 5.0]


async def test_a_413_splits_the_batch_in_halves_down_to_single_events_before_dead_lettering(
    tmp_path: Path, collector: Collector
) -> None:
    collector.answer(Answer(413), Answer(413), Answer(200), Answer(413))
    sleeps = Sleeps()
    async with forwarding(tmp_path, collector.url, sleeps) as (spool, forwarder):
        await send(spool, forwarder, [event(1), event(2), event(3), event(4)])
        await collector.events_soon(3)
        await forwarder.drain()
        stats = spool.stats()
    assert [[e["event_id"] for e in r.body["data"]] for r in collector.requests] == [
        [event(n)["event_id"] for n in ns] for ns in ([1, 2, 3, 4], [1, 2], [1], [2], [3, 4])
    ]
    assert len({r.body["batch_id"] for r in collector.requests}) == 5  # each half is a batch of its own
    assert (stats.dead_lettered, stats.forwarded, stats.spooled) == (1, 3, 0)
    assert sleeps.delays == []


@pytest.mark.parametrize("failure", [Answer(drip_s=0.5), Answer(hang_s=30.0)], ids=["one-byte-at-a-time", "silent"])
async def test_an_attempt_has_a_whole_request_deadline_then_is_retried_and_delivered(
    tmp_path: Path, collector: Collector, failure: Answer, caplog: pytest.LogCaptureFixture
) -> None:
    collector.answer(failure, failure)
    sleeps = Sleeps()
    # Each read of the dripping answer comes well within the timeout; only a deadline on the whole request ends it.
    async with forwarding(tmp_path, collector.url, sleeps, upstream_timeout_s=1.0) as (spool, forwarder):
        await send(spool, forwarder, [event(1)])
        assert await collector.events_soon(1, timeout=20.0) == [event(1)]
    assert sleeps.delays == [0.01, 0.02]
    assert len(collector.requests) == 3
    retries = [r.getMessage() for r in caplog.records if "will retry" in r.getMessage()]
    assert len(retries) == 2
    if failure.drip_s:
        assert retries == [
            "upstream did not answer within 1s for a batch of 1 events; will retry in 0.01s (attempt 2)",
            "upstream did not answer within 1s for a batch of 1 events; will retry in 0.02s (attempt 3)",
        ]
    assert event(1)["event_id"] not in caplog.text


async def test_stopping_a_task_that_lost_a_cancel_cancels_it_again() -> None:
    # What a cancel that lands as redis-py's client finishes a command looks like from the task: lost, so the
    # task's loop goes round. A shutdown that awaited it after one cancel hung, with the task running on.
    rounds: list[str] = []

    async def loses_its_first_cancel() -> None:
        lost = False
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if lost:
                    rounds.append("cancelled")
                    raise
                lost = True
                rounds.append("lost")
                asyncio.current_task().uncancel()  # type: ignore[union-attr]

    task = asyncio.create_task(loses_its_first_cancel())
    await asyncio.sleep(0)
    with anyio.fail_after(10):
        await stop_task(task, again_every_s=0.05)
    assert task.cancelled() and rounds == ["lost", "cancelled"]


async def test_stopping_a_task_raises_what_it_raised() -> None:
    async def fails() -> None:
        raise OSError("disk gone")

    task = asyncio.create_task(fails())
    await asyncio.sleep(0)  # it runs, and fails
    with pytest.raises(OSError, match="disk gone"):
        await stop_task(task)


TOKEN = "gate-token-0123456789abcdef"


@pytest.mark.parametrize("status", [401, 403])
async def test_a_refused_token_keeps_the_batch_and_retries_it_loudly(
    tmp_path: Path, collector: Collector, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(f"\n  {TOKEN}  \nsecond-line-is-not-read\n")
    collector.answer(Answer(status), Answer(status))
    sleeps = Sleeps()
    async with forwarding(tmp_path, collector.url, sleeps, upstream_token_file=token_file) as (spool, forwarder):
        await send(spool, forwarder, [event(1), event(2)])
        assert await collector.events_soon(2) == [event(1), event(2)]
        await forwarder.drain()
        stats = spool.stats()
        assert (stats.dead_lettered, stats.forwarded, stats.spooled) == (0, 2, 0)
    assert len(sleeps.delays) == 2  # held and sent again after a backoff, never dead-lettered
    assert [r.headers["authorization"] for r in collector.requests] == [f"Bearer {TOKEN}"] * 3
    refused = [r.getMessage() for r in caplog.records if "UPSTREAM REFUSED THE GATE" in r.getMessage()]
    assert len(refused) == 2 and f"({status})" in refused[0] and "stays queued" in refused[0]
    assert TOKEN not in caplog.text


async def test_without_a_token_file_no_authorization_is_sent(tmp_path: Path, collector: Collector) -> None:
    async with forwarding(tmp_path, collector.url, Sleeps()) as (spool, forwarder):
        await send(spool, forwarder, [event(1)])
        assert await collector.events_soon(1) == [event(1)]
    assert "authorization" not in collector.requests[0].headers

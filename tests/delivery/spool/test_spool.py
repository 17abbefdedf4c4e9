"""The spool against real SQLite files: bounds, claims that survive a restart, counters, corruption."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console_proxy.core.accounting import TopicAccount
from console_proxy.core.events import ConsoleEvent
from console_proxy.core.metrics import QueueStats
from console_proxy.delivery.sink import SinkRefused
from console_proxy.delivery.spool.spool import Spool, read_spool_stats
from console_proxy.delivery.spool.writes import ROWS_PER_INSERT

pytestmark = pytest.mark.anyio


def event(i: int) -> ConsoleEvent:
    return {
        "event_id": str(uuid.UUID(int=i, version=4)),
        "event_type": "Data/SET_TABLE",
        "url": f"/data/{i}",
        "console_mode": "server",
        "server_uuid": None,
        "cli_uuid": None,
        "server_version": None,
        "timestamp": "2026-11-27T19:00:00.000Z",
        "data": None,
    }


EVENT_BYTES = len(json.dumps(event(1), separators=(",", ":")))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def make(
    path: Path, *, max_events: int = 1000, max_bytes: int = 10**9, max_age_s: float = 3600.0, clock: Clock | None = None
) -> Spool:
    return Spool(
        path / "spool.db", max_events=max_events, max_bytes=max_bytes, max_age_s=max_age_s, clock=clock or Clock()
    )


@pytest.fixture
async def spool(tmp_path: Path) -> AsyncIterator[Spool]:
    s = make(tmp_path)
    await s.open()
    yield s
    await s.close()


def invariant_holds(stats: QueueStats) -> bool:
    return stats.accepted == stats.forwarded + stats.spooled + stats.dead_lettered + stats.expired


async def test_a_claimed_batch_is_the_upstream_body_and_is_claimed_again_until_acked(spool: Spool) -> None:
    await spool.put("console", [event(1), event(2), event(3)])
    batch = await spool.claim(2)
    assert batch is not None
    body = json.loads(batch.body)
    assert body == {"topic": "console", "batch_id": batch.batch_id, "data": [event(1), event(2)]}
    assert batch.count == 2
    again = await spool.claim(2)
    assert again == batch
    assert await spool.ack(batch.batch_id) == 2
    rest = await spool.claim(2)
    assert rest is not None and rest.batch_id != batch.batch_id
    assert json.loads(rest.body)["data"] == [event(3)]
    assert spool.stats() == QueueStats(
        accepted=3,
        forwarded=2,
        dead_lettered=0,
        expired=0,
        spooled=1,
        spooled_bytes=EVENT_BYTES,
        last_delivery_at=1_000_000.0,
        topics=(TopicAccount("console", accepted=3, uncounted=2, queued=1),),
    )


async def test_an_empty_spool_has_no_batch(spool: Spool) -> None:
    assert await spool.claim(10) is None


async def test_a_claim_survives_a_restart_with_the_same_batch_id_and_event_ids(tmp_path: Path) -> None:
    first = make(tmp_path)
    await first.open()
    await first.put("console", [event(i) for i in range(5)])
    claimed = await first.claim(3)
    await first.close()
    second = make(tmp_path)
    await second.open()
    try:
        assert await second.claim(3) == claimed
        assert (second.depth, second.unclaimed) == (5, 2)
    finally:
        await second.close()


@pytest.mark.parametrize(
    ("max_events", "max_bytes", "sizes", "refused_at"),
    [
        (5, 10**9, [3, 2, 1], 2),
        (5, 10**9, [6], 0),
        (100, 3 * EVENT_BYTES, [2, 1, 1], 2),
        (100, 3 * EVENT_BYTES - 1, [3], 0),
    ],
)
async def test_a_full_spool_refuses_the_whole_batch_and_evicts_nothing(
    tmp_path: Path, max_events: int, max_bytes: int, sizes: list[int], refused_at: int
) -> None:
    s = make(tmp_path, max_events=max_events, max_bytes=max_bytes)
    await s.open()
    try:
        n = 0
        for i, size in enumerate(sizes):
            batch = [event(n + k) for k in range(size)]
            if i == refused_at:
                with pytest.raises(SinkRefused) as refused:
                    await s.put("console", batch)
                assert (refused.value.reason, refused.value.status, refused.value.retry_after) == (
                    "spool is full",
                    503,
                    5,
                )
                break
            await s.put("console", batch)
            n += size
        claimed = await s.claim(1000)
        kept = [e["event_id"] for e in json.loads(claimed.body)["data"]] if claimed else []
        assert kept == [event(k)["event_id"] for k in range(n)]
        assert s.stats().accepted == n
    finally:
        await s.close()


async def test_concurrent_puts_are_all_committed(spool: Spool) -> None:
    await asyncio.gather(*(spool.put("console", [event(10 * i + k) for k in range(3)]) for i in range(40)))
    stats = spool.stats()
    assert (stats.accepted, stats.spooled) == (120, 120)
    batch = await spool.claim(1000)
    assert batch is not None
    assert sorted(e["event_id"] for e in json.loads(batch.body)["data"]) == sorted(
        event(10 * i + k)["event_id"] for i in range(40) for k in range(3)
    )


async def test_a_batch_of_more_rows_than_one_insert_statement_takes_is_stored_whole_and_in_order(
    spool: Spool,
) -> None:
    n = 2 * ROWS_PER_INSERT + 3  # two full statements and a short one
    await spool.put("console", [event(i) for i in range(n)])
    stats = spool.stats()
    assert (stats.accepted, stats.spooled) == (n, n)
    batch = await spool.claim(10 * n)
    assert batch is not None
    assert [e["event_id"] for e in json.loads(batch.body)["data"]] == [event(i)["event_id"] for i in range(n)]


async def test_old_events_expire_and_are_counted(tmp_path: Path) -> None:
    clock = Clock()
    s = make(tmp_path, max_age_s=100.0, clock=clock)
    await s.open()
    try:
        await s.put("console", [event(1), event(2)])
        clock.now += 60
        await s.put("console", [event(3)])
        assert await s.expire() == 0
        clock.now += 50
        assert await s.expire() == 2
        stats = s.stats()
        assert (stats.accepted, stats.expired, stats.spooled) == (3, 2, 1)
        assert invariant_holds(stats)
    finally:
        await s.close()


async def test_a_dead_lettered_batch_is_kept_aside_with_its_status(tmp_path: Path, spool: Spool) -> None:
    await spool.put("console", [event(1), event(2)])
    batch = await spool.claim(10)
    assert batch is not None
    assert await spool.dead_letter(batch.batch_id, 400) == 2
    with sqlite3.connect(spool.path) as conn:
        rows = conn.execute("SELECT event_id, batch_id, status FROM dead_letters ORDER BY seq").fetchall()
    assert rows == [(event(1)["event_id"], batch.batch_id, 400), (event(2)["event_id"], batch.batch_id, 400)]
    stats = spool.stats()
    assert (stats.accepted, stats.dead_lettered, stats.spooled, stats.last_delivery_at) == (2, 2, 0, None)


def _claimed(path: Path) -> list[tuple[str | None, int]]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute("SELECT batch_id, count(*) FROM events GROUP BY batch_id ORDER BY min(seq)").fetchall()


async def test_an_ack_claims_the_next_full_batch_in_the_same_commit(spool: Spool) -> None:
    await spool.put("console", [event(i) for i in range(1, 6)])
    first = await spool.claim(2)
    assert first is not None
    await spool.ack(first.batch_id)
    # Two of the three left are claimed already (one commit for the ack and the claim), one is not.
    claimed = _claimed(spool.path)
    assert [count for _, count in claimed] == [2, 1] and claimed[1][0] is None
    assert (spool.depth, spool.unclaimed) == (3, 1)
    second = await spool.claim(2)
    assert second is not None and second.batch_id == claimed[0][0]
    assert [e["event_id"] for e in json.loads(second.body)["data"]] == [event(3)["event_id"], event(4)["event_id"]]
    await spool.ack(second.batch_id)
    assert _claimed(spool.path) == [(None, 1)]  # not a full batch: left for the forwarder to fill or wait for


async def test_a_put_that_fills_a_batch_while_none_is_claimed_claims_it_in_its_own_commit(tmp_path: Path) -> None:
    first = make(tmp_path)
    await first.open()
    await first.put("console", [event(1), event(2)])
    sent = await first.claim(3)  # not full: the forwarder's claim; its size is what a put claims from then on
    assert sent is not None and sent.count == 2
    await first.put("console", [event(3), event(4), event(5)])
    assert [count for _, count in _claimed(first.path)] == [2, 3]  # a batch is out: the put claims nothing
    await first.ack(sent.batch_id)
    await first.put("console", [event(6)])
    assert [count for _, count in _claimed(first.path)] == [3, 1]  # the ack claimed the full batch waiting
    assert (first.depth, first.unclaimed) == (4, 1)
    taken = await first.claim(3)
    assert taken is not None
    await first.ack(taken.batch_id)
    assert _claimed(first.path) == [(None, 1)]
    await first.put("console", [event(7), event(8), event(9)])
    # Nothing was claimed: the put claimed the oldest full batch in the same transaction as its rows.
    claimed = _claimed(first.path)
    assert [count for _, count in claimed] == [3, 1] and claimed[0][0] is not None and claimed[1][0] is None
    assert (first.depth, first.unclaimed) == (4, 1)
    await first.close()  # as a crash would leave it: the claim is in the file, nothing was sent under it
    second = make(tmp_path)
    await second.open()
    try:
        again = await second.claim(3)
        assert again is not None and again.batch_id == claimed[0][0]
        assert [e["event_id"] for e in json.loads(again.body)["data"]] == [event(i)["event_id"] for i in (6, 7, 8)]
        await second.ack(again.batch_id)
        stats = second.stats()
        assert (stats.accepted, stats.forwarded, stats.spooled) == (9, 8, 1) and invariant_holds(stats)
    finally:
        await second.close()


async def test_an_ack_shares_the_commit_of_the_puts_waiting_with_it(spool: Spool) -> None:
    await spool.put("console", [event(1), event(2)])
    sent = await spool.claim(2)
    assert sent is not None
    commits: list[str] = []
    assert spool._file.conn is not None  # the spool thread's connection: its statements, as SQLite runs them
    spool._file.conn.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
    # Another connection holds the write lock: the spool thread waits at its first BEGIN while the rest queue up.
    with contextlib.closing(sqlite3.connect(spool.path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        first = asyncio.ensure_future(spool.put("console", [event(3)]))
        await asyncio.sleep(0)
        acked = asyncio.ensure_future(spool.ack(sent.batch_id))
        puts = [asyncio.ensure_future(spool.put("console", [event(i)])) for i in (4, 5)]
        await asyncio.sleep(0)  # all four queued behind the lock
        other.execute("COMMIT")
        await asyncio.gather(first, *puts)
        assert await acked == 2
    # The first put (with the rest, or alone), then the ack with the two puts behind it: three without grouping.
    assert len(commits) <= 2
    stats = spool.stats()
    assert (stats.accepted, stats.forwarded, stats.spooled) == (5, 2, 3) and invariant_holds(stats)
    claimed = _claimed(spool.path)  # and nothing was claimed then: the group claimed the next full batch too
    assert [count for _, count in claimed] == [2, 1] and claimed[0][0] is not None and claimed[1][0] is None


async def test_a_batch_an_ack_claimed_is_let_go_when_the_next_claim_asks_another_size(spool: Spool) -> None:
    await spool.put("console", [event(i) for i in range(1, 7)])
    first = await spool.claim(2)
    assert first is not None
    await spool.ack(first.batch_id)
    third = await spool.claim(3)
    assert third is not None and third.count == 3
    assert [e["event_id"] for e in json.loads(third.body)["data"]] == [event(i)["event_id"] for i in (3, 4, 5)]
    assert (spool.depth, spool.unclaimed) == (4, 1)


async def test_counters_survive_a_restart(tmp_path: Path) -> None:
    clock = Clock()
    first = make(tmp_path, max_age_s=10.0, clock=clock)
    await first.open()
    await first.put("console", [event(i) for i in range(6)])
    batch = await first.claim(2)
    assert batch is not None
    await first.ack(batch.batch_id)
    batch = await first.claim(1)
    assert batch is not None
    await first.dead_letter(batch.batch_id, 422)
    await first.close()
    clock.now += 11
    second = make(tmp_path, max_age_s=10.0, clock=clock)
    await second.open()
    try:
        await second.put("console", [event(7)])
        assert await second.expire() == 3
        stats = second.stats()
        assert stats == QueueStats(
            accepted=7,
            forwarded=2,
            dead_lettered=1,
            expired=3,
            spooled=1,
            spooled_bytes=EVENT_BYTES,
            last_delivery_at=1_000_000.0,
            topics=(TopicAccount("console", accepted=7, uncounted=2, dead_lettered=1, expired=3, queued=1),),
        )
        assert read_spool_stats(second.path) == stats
    finally:
        await second.close()


@pytest.mark.parametrize("content", [b"not a database" * 300, b"SQLite format 3\x00" + b"\xff" * 5000])
async def test_a_corrupt_spool_is_moved_aside_and_a_fresh_one_started(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes
) -> None:
    (tmp_path / "spool.db").write_bytes(content)
    s = make(tmp_path)
    with caplog.at_level(logging.ERROR, logger="console_proxy"):
        await s.open()
    try:
        aside = list(tmp_path.glob("spool.db.corrupt-*"))
        assert len(aside) == 1 and aside[0].read_bytes() == content
        assert any(r.message.startswith("SPOOL CORRUPT: ") for r in caplog.records)
        await s.put("console", [event(1)])
        assert s.stats().accepted == 1 and s.writable
    finally:
        await s.close()


async def test_a_spool_that_cannot_be_created_refuses_puts(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    s = make(tmp_path / "file")
    with pytest.raises(SinkRefused):
        await s.open()
    try:
        assert not s.writable
        with pytest.raises(SinkRefused) as refused:
            await s.put("console", [event(1)])
        assert (refused.value.reason, refused.value.status) == ("spool is unwritable", 503)
    finally:
        await s.close()


def test_reading_stats_of_a_missing_spool_creates_nothing(tmp_path: Path) -> None:
    assert read_spool_stats(tmp_path / "spool.db") is None
    assert list(tmp_path.iterdir()) == []


async def test_a_cancelled_caller_does_not_stop_the_spool_thread(spool: Spool) -> None:
    for _ in range(20):
        tasks = [asyncio.ensure_future(spool.claim(10)), asyncio.ensure_future(spool.put("console", [event(1)]))]
        await asyncio.sleep(0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    await spool.put("console", [event(2)])
    assert spool.stats().accepted >= 1
    assert await spool.claim(100) is not None


async def test_a_second_process_on_the_same_spool_is_refused_and_the_first_keeps_working(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = make(tmp_path)
    await first.open()
    second = make(tmp_path)
    try:
        with pytest.raises(SinkRefused):
            await second.open()
        assert not second.writable
        assert f"spool {second.path} cannot be opened: another process holds this spool" in caplog.text
        await first.put("console", [event(1)])
        assert first.stats().accepted == 1
        assert list(tmp_path.glob("*.corrupt-*")) == []
    finally:
        await second.close()
        await first.close()
    third = make(tmp_path)
    await third.open()
    try:
        assert third.depth == 1
    finally:
        await third.close()


OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.integers(1, 6)),
        st.tuples(st.just("ack"), st.integers(1, 8)),
        st.tuples(st.just("dead"), st.integers(1, 8)),
        st.tuples(st.just("claim"), st.integers(1, 8)),
        st.tuples(st.just("age"), st.sampled_from([10.0, 60.0])),
        st.tuples(st.just("reopen"), st.just(0)),
    ),
    max_size=25,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=OPERATIONS)
def test_every_accepted_event_ends_forwarded_dead_expired_or_still_spooled_exactly_once(
    tmp_path: Path, operations: list[tuple[str, Any]]
) -> None:
    async def run(directory: Path) -> None:
        clock = Clock()
        spool = make(directory, max_events=12, max_age_s=100.0, clock=clock)
        await spool.open()
        accepted: set[str] = set()
        outcome: dict[str, set[str]] = {"forwarded": set(), "dead": set()}
        claimed: dict[str, set[str]] = {}  # batch_id -> its event_ids when first claimed
        n = 0
        try:
            for op, arg in operations:
                if op == "put":
                    events = [event(n + k) for k in range(arg)]
                    n += arg
                    try:
                        await spool.put("console", events)
                        accepted.update(e["event_id"] for e in events)
                    except SinkRefused:
                        assert spool.depth + arg > 12
                elif op in ("ack", "dead", "claim"):
                    batch = await spool.claim(arg)
                    if batch is not None:
                        ids = {e["event_id"] for e in json.loads(batch.body)["data"]}
                        assert ids <= claimed.setdefault(batch.batch_id, ids)  # a re-claim: same events, or fewer
                        if op == "ack":
                            outcome["forwarded"].update(ids)
                            await spool.ack(batch.batch_id)
                        elif op == "dead":
                            outcome["dead"].update(ids)
                            await spool.dead_letter(batch.batch_id, 400)
                elif op == "age":
                    clock.now += arg
                    await spool.expire()
                else:
                    await spool.close()
                    spool = make(directory, max_events=12, max_age_s=100.0, clock=clock)
                    await spool.open()
                stats = spool.stats()
                assert invariant_holds(stats)
                assert stats.accepted == len(accepted)
            rest: set[str] = set()
            while (batch := await spool.claim(5)) is not None:
                rest.update(e["event_id"] for e in json.loads(batch.body)["data"])
                await spool.ack(batch.batch_id)
            stats = spool.stats()
        finally:
            await spool.close()
        assert outcome["forwarded"].isdisjoint(outcome["dead"]) and rest.isdisjoint(outcome["forwarded"])
        assert (stats.forwarded, stats.dead_lettered) == (len(outcome["forwarded"] | rest), len(outcome["dead"]))
        assert outcome["forwarded"] | outcome["dead"] | rest <= accepted
        assert stats.expired == len(accepted - outcome["forwarded"] - outcome["dead"] - rest)

    with tempfile.TemporaryDirectory(dir=tmp_path) as directory:
        asyncio.run(run(Path(directory)))


async def test_a_spool_moved_away_is_refused_before_any_ack_until_it_is_back(spool: Spool, tmp_path: Path) -> None:
    await spool.put("console", [event(1)])
    (tmp_path / "spool.db").rename(tmp_path / "away.db")
    assert not spool.intact()
    for _ in range(2):
        with pytest.raises(SinkRefused) as refused:
            await spool.put("console", [event(2)])
        assert (refused.value.reason, refused.value.status, refused.value.label) == (
            "spool is missing",
            503,
            "spool_missing",
        )
    assert not (tmp_path / "spool.db").exists()  # never quietly re-created
    (tmp_path / "away.db").rename(tmp_path / "spool.db")
    assert spool.intact()
    await spool.put("console", [event(3)])
    assert (spool.stats().accepted, spool.stats().spooled) == (2, 2)


async def test_a_replaced_spool_refuses_one_batch_then_the_new_file_is_used(tmp_path: Path) -> None:
    other = make(tmp_path / "other")
    await other.open()
    await other.put("console", [event(7)])
    await other.close()
    s = make(tmp_path)
    await s.open()
    try:
        await s.put("console", [event(1)])
        (tmp_path / "spool.db").rename(tmp_path / "moved.db")
        (tmp_path / "other" / "spool.db").replace(tmp_path / "spool.db")
        with pytest.raises(SinkRefused):
            await s.put("console", [event(2)])
        await s.put("console", [event(3)])
        batch = await s.claim(10)
        assert batch is not None
        assert [e["url"] for e in json.loads(batch.body)["data"]] == ["/data/7", "/data/3"]
    finally:
        await s.close()
    moved = sqlite3.connect(tmp_path / "moved.db")
    assert moved.execute("SELECT json FROM events").fetchall() == [(json.dumps(event(1), separators=(",", ":")),)]
    moved.close()


async def test_a_scrape_never_creates_a_spool(spool: Spool, tmp_path: Path) -> None:
    spool.stats()
    for name in ("spool.db", "spool.db-wal", "spool.db-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    fresh = make(tmp_path)  # a reader that was never opened: it must not create the file either
    with pytest.raises(sqlite3.Error):
        fresh.stats()
    with contextlib.suppress(sqlite3.Error):
        spool.stats()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spool.db.lock"]


async def test_each_batch_holds_one_topic_in_the_order_spooled(spool: Spool) -> None:
    await spool.put("console", [event(1)])
    await spool.put("console_test", [event(2), event(3)])
    await spool.put("console", [event(4)])
    seen = []
    while (batch := await spool.claim(10)) is not None:
        body = json.loads(batch.body)
        seen.append((batch.topic, body["topic"], [e["url"] for e in body["data"]]))
        await spool.ack(batch.batch_id)
    assert seen == [
        ("console", "console", ["/data/1", "/data/4"]),
        ("console_test", "console_test", ["/data/2", "/data/3"]),
    ]


OLD_SCHEMA = """
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, json TEXT NOT NULL,
    bytes INTEGER NOT NULL, enqueued_at REAL NOT NULL, batch_id TEXT);
CREATE TABLE dead_letters (
    seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL, json TEXT NOT NULL, batch_id TEXT NOT NULL,
    status INTEGER NOT NULL, enqueued_at REAL NOT NULL, dead_at REAL NOT NULL);
CREATE TABLE counters (name TEXT PRIMARY KEY, value NUMERIC NOT NULL);
INSERT INTO counters VALUES ('accepted', 2), ('forwarded', 0), ('dead_lettered', 0), ('expired', 0),
    ('last_delivery_at', 0);
"""


async def test_a_spool_from_before_topics_is_migrated_and_its_events_are_console(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "spool.db")
    conn.executescript(OLD_SCHEMA)
    rows = [(event(i)["event_id"], json.dumps(event(i), separators=(",", ":")), EVENT_BYTES, 999_999.0) for i in (1, 2)]
    conn.executemany("INSERT INTO events (event_id, json, bytes, enqueued_at) VALUES (?, ?, ?, ?)", rows)
    conn.execute("UPDATE events SET batch_id = 'claimed-before' WHERE seq = 1")
    conn.commit()
    conn.close()
    s = make(tmp_path)
    await s.open()
    try:
        await s.put("console_test", [event(3)])
        first = await s.claim(10)
        assert first is not None
        assert (first.batch_id, json.loads(first.body)["topic"], first.count) == ("claimed-before", "console", 1)
        await s.ack(first.batch_id)
        second = await s.claim(10)
        assert second is not None and (second.topic, second.count) == ("console", 1)
        await s.dead_letter(second.batch_id, 400)
        third = await s.claim(10)
        assert third is not None and (third.topic, third.count) == ("console_test", 1)
        assert invariant_holds(s.stats())
    finally:
        await s.close()
    conn = sqlite3.connect(tmp_path / "spool.db")
    assert conn.execute("SELECT topic FROM dead_letters").fetchall() == [("console",)]
    conn.close()

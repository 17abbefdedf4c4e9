"""The per-topic accounting of both queues, the SQLite spool and the Redis stream: accepted counted with the put,
the collector's counts with the ack, dead letters and expiry with theirs; and an older spool file migrated."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from console_proxy.core.accounting import Answer, TopicAccount
from console_proxy.core.events import OutboundEvent
from console_proxy.delivery.redis.client import queue_keys
from console_proxy.delivery.redis.queue import RedisQueue
from console_proxy.delivery.spool.spool import Spool, read_spool_stats

from support.outbound import opaque
from support.redis_server import RedisServer

pytestmark = pytest.mark.anyio


def events(prefix: str, n: int) -> list[OutboundEvent]:
    return [opaque({"event_id": f"{prefix}-{i}", "event_type": "T"}) for i in range(n)]


class Clock:
    now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["spool", "redis"])
async def queue(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    made: Spool | RedisQueue
    if request.param == "spool":
        made = Spool(tmp_path / "spool.db", max_events=1000, max_bytes=10**8, max_age_s=3600.0, clock=Clock())
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        made = RedisQueue(server.url, max_events=1000, max_bytes=10**8, max_age_s=3600.0)
    await made.open()
    yield made
    await made.close()


def topics(queue: Spool | RedisQueue) -> dict[str, TopicAccount]:
    read = queue.stats().topics
    assert read is not None
    return {account.topic: account for account in read}


async def test_each_topic_adds_up_through_answers_dead_letters_and_the_queue(queue: Any) -> None:
    await queue.put("console", events("c", 5))
    await queue.put("cli", events("l", 3))
    assert topics(queue) == {
        "console": TopicAccount("console", accepted=5, queued=5),
        "cli": TopicAccount("cli", accepted=3, queued=3),
    }
    console = await queue.claim(5)
    assert console is not None and console.topic == "console"
    assert await queue.ack(console.batch_id, Answer(stored=3, duplicates=1, rejected=1)) == 5
    cli = await queue.claim(2)
    assert cli is not None and cli.topic == "cli"
    assert await queue.ack(cli.batch_id) == 2  # a 2xx without the collector's counts
    await queue.put("console", events("d", 2))
    last_cli = await queue.claim(10)
    assert last_cli is not None and last_cli.topic == "cli"
    assert await queue.dead_letter(last_cli.batch_id, 422) == 1
    assert topics(queue) == {
        "console": TopicAccount("console", accepted=7, stored=3, duplicates=1, rejected=1, queued=2),
        "cli": TopicAccount("cli", accepted=3, uncounted=2, dead_lettered=1),
    }
    assert all(account.gap == 0 for account in topics(queue).values())


async def test_an_answer_that_does_not_add_up_shows_as_a_gap(queue: Any) -> None:
    await queue.put("console", events("c", 4))
    batch = await queue.claim(4)
    assert batch is not None
    await queue.ack(batch.batch_id, Answer(stored=1, duplicates=0, rejected=0))
    assert topics(queue)["console"].gap == 3


async def test_expired_events_are_accounted_under_their_topic(tmp_path: Path) -> None:
    clock = Clock()
    spool = Spool(tmp_path / "spool.db", max_events=100, max_bytes=10**8, max_age_s=10.0, clock=clock)
    await spool.open()
    try:
        await spool.put("server", events("s", 2))
        clock.now += 11
        await spool.put("console", events("c", 1))
        assert await spool.expire() == 2
        assert topics(spool) == {
            "server": TopicAccount("server", accepted=2, expired=2),
            "console": TopicAccount("console", accepted=1, queued=1),
        }
    finally:
        await spool.close()


def old_spool(path: Path, fill: Callable[[sqlite3.Connection], None]) -> None:
    """A spool file as 0.2 wrote it: topics, counters, no accounts."""
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, json TEXT NOT NULL,
            bytes INTEGER NOT NULL, enqueued_at REAL NOT NULL, batch_id TEXT, topic TEXT NOT NULL DEFAULT 'console');
        CREATE TABLE dead_letters (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL, json TEXT NOT NULL,
            batch_id TEXT NOT NULL, status INTEGER NOT NULL, enqueued_at REAL NOT NULL, dead_at REAL NOT NULL,
            topic TEXT NOT NULL DEFAULT 'console');
        CREATE TABLE counters (name TEXT PRIMARY KEY, value NUMERIC NOT NULL);
        INSERT INTO counters VALUES ('accepted', 9), ('forwarded', 5), ('dead_lettered', 1), ('expired', 0),
            ('last_delivery_at', 0);
        """
    )
    fill(conn)
    conn.commit()
    conn.close()


async def test_a_spool_of_an_older_version_is_migrated_without_losing_a_row(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"

    def fill(conn: sqlite3.Connection) -> None:
        for i, topic in enumerate(["console", "console", "cli"]):
            conn.execute(
                "INSERT INTO events (event_id, json, bytes, enqueued_at, batch_id, topic) VALUES (?, ?, 2, ?, ?, ?)",
                (f"e{i}", "{}", 1_000_000.0, "b1" if i == 0 else None, topic),
            )
        conn.execute("INSERT INTO dead_letters VALUES (9, 'd', '{}', 'b0', 422, 1, 2, 'cli')")

    old_spool(path, fill)
    assert read_spool_stats(path) is not None and read_spool_stats(path).topics is None  # type: ignore[union-attr]
    spool = Spool(path, max_events=100, max_bytes=10**8, max_age_s=10**9, clock=Clock())
    await spool.open()
    try:
        stats = spool.stats()
        assert (stats.accepted, stats.forwarded, stats.dead_lettered, stats.spooled) == (9, 5, 1, 3)
        assert topics(spool) == {
            "console": TopicAccount("console", accepted=2, queued=2),
            "cli": TopicAccount("cli", accepted=2, dead_lettered=1, queued=1),
        }
        batch = await spool.claim(10)  # the claim the old file held, with its batch_id
        assert batch is not None and batch.batch_id == "b1"
        await spool.ack(batch.batch_id, Answer(1, 0, 0))
        assert topics(spool)["console"] == TopicAccount("console", accepted=2, stored=1, queued=1)
    finally:
        await spool.close()


async def test_a_redis_queue_of_an_older_version_is_accounted_from_what_it_holds(redis_server: RedisServer) -> None:
    first = RedisQueue(redis_server.url, max_events=100, max_bytes=10**8, max_age_s=3600.0)
    await first.open()
    await first.put("console", events("c", 3))
    await first.put("cli", events("l", 1))
    await first.close()
    client = redis_server.client()
    try:
        fields = [
            name for name in client.hkeys(queue_keys().counters) if isinstance(name, bytes) and name.startswith(b"acct")
        ]
        client.hdel(queue_keys().counters, *fields, b"acct_version")  # as 0.2 left it
    finally:
        client.close()
    second = RedisQueue(redis_server.url, max_events=100, max_bytes=10**8, max_age_s=3600.0)
    await second.open()
    try:
        assert topics(second) == {
            "console": TopicAccount("console", accepted=3, queued=3),
            "cli": TopicAccount("cli", accepted=1, queued=1),
        }
    finally:
        await second.close()


async def test_a_redis_that_lost_its_data_gets_the_accounts_back_with_the_queued_as_lost(
    redis_server: RedisServer,
) -> None:
    queue = RedisQueue(redis_server.url, max_events=100, max_bytes=10**8, max_age_s=3600.0)
    await queue.open()
    try:
        await queue.put("console", events("c", 3))
        batch = await queue.claim(2)
        assert batch is not None
        await queue.ack(batch.batch_id, Answer(2, 0, 0))
        await queue.put("cli", events("l", 2))
        await queue.poll()  # the last reading, which a loss is restored from
        client = redis_server.client()
        try:
            client.flushall()
        finally:
            client.close()
        queue.writable = False  # as after a restart of Redis: the next poll connects again first
        await queue.poll()
        assert topics(queue) == {
            "console": TopicAccount("console", accepted=3, stored=2, lost=1),
            "cli": TopicAccount("cli", accepted=2, lost=2),
        }
    finally:
        await queue.close()

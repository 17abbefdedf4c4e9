"""The Redis queue against a real redis-server: claims, leases, acknowledgements, bounds, counters, outages."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
import redis

from console_proxy.core.events import OutboundEvent
from console_proxy.delivery.queue import Batch
from console_proxy.delivery.redis.client import describe_persistence
from console_proxy.delivery.redis.queue import QueueError, RedisQueue
from console_proxy.delivery.sink import SinkRefused

from support.outbound import opaque
from support.redis_server import RedisServer, running_redis

pytestmark = pytest.mark.anyio


def events(*ids: str) -> list[OutboundEvent]:
    return [opaque({"event_id": i, "event_type": "T"}) for i in ids]


def ids_of(batch: Batch | None) -> list[str]:
    assert batch is not None
    return [e["event_id"] for e in json.loads(batch.body)["data"]]


def invariant(queue: RedisQueue) -> tuple[int, int, int, int, int]:
    s = queue.stats()
    assert s.accepted == s.forwarded + s.spooled + s.dead_lettered + s.expired
    return s.accepted, s.forwarded, s.spooled, s.dead_lettered, s.expired


@pytest.fixture
async def make_queue(redis_server: RedisServer) -> AsyncIterator[Any]:
    opened: list[RedisQueue] = []

    async def make(**options: Any) -> RedisQueue:
        values: dict[str, Any] = {"max_events": 100, "max_bytes": 100_000, "max_age_s": 3600.0, "lease_s": 30.0}
        queue = RedisQueue(redis_server.url, **{**values, **options})
        await queue.open()
        opened.append(queue)
        return queue

    yield make
    for queue in opened:
        await queue.close()


async def test_a_batch_is_claimed_sent_again_until_acked_and_then_counted_forwarded(make_queue: Any) -> None:
    queue = await make_queue()
    await queue.put("console", events("a", "b"))
    assert (queue.depth, queue.unclaimed) == (2, 2)
    batch = await queue.claim(10)
    assert batch is not None
    assert json.loads(batch.body) == {"topic": "console", "batch_id": batch.batch_id, "data": events("a", "b")}
    assert (batch.count, queue.depth, queue.unclaimed) == (2, 2, 0)
    again = await queue.claim(10)
    assert again == batch
    assert await queue.ack(batch.batch_id) == 2
    assert (queue.depth, await queue.claim(10)) == (0, None)
    assert invariant(queue) == (2, 2, 0, 0, 0)


async def test_a_batch_holds_one_topic_and_at_most_max_events(make_queue: Any) -> None:
    queue = await make_queue()
    await queue.put("console", events("a", "b", "c"))
    await queue.put("cli", events("d"))
    await queue.put("console", events("e"))
    got = []
    while (batch := await queue.claim(2)) is not None:
        got.append((json.loads(batch.body)["topic"], ids_of(batch)))
        assert await queue.ack(batch.batch_id) == batch.count
    assert got == [("console", ["a", "b"]), ("console", ["c"]), ("cli", ["d"]), ("console", ["e"])]
    assert invariant(queue) == (5, 5, 0, 0, 0)


async def test_an_ack_claims_the_next_full_batch_in_the_same_script(make_queue: Any, redis_server: RedisServer) -> None:
    queue = await make_queue()
    for ids in (("a", "b"), ("c", "d"), ("e",)):  # three accepted batches: three entries
        await queue.put("console", events(*ids))
    first = await queue.claim(2)
    assert await queue.ack(first.batch_id if first else "") == 2
    # redis-py types a reply as bytes | str whatever the client; this one answers bytes.
    held_ids = cast(list[bytes], redis_server.client().lrange(queue.keys.prefix + "held:" + queue.consumer, 0, -1))
    held = [b.decode() for b in held_ids]
    second = await queue.claim(2)  # claimed by the ack already: a full batch was waiting
    assert second is not None and held == [second.batch_id] and ids_of(second) == ["c", "d"]
    assert await queue.ack(second.batch_id) == 2
    third = await queue.claim(2)  # only one event was left: not claimed by the ack, so it could wait to fill
    assert ids_of(third) == ["e"]
    assert invariant(queue) == (5, 4, 1, 0, 0)


async def test_an_entry_larger_than_a_batch_is_cut_and_its_rest_sent_next_under_new_batch_ids(
    make_queue: Any,
) -> None:
    queue = await make_queue()
    await queue.put("console", events("a", "b", "c", "d", "e"))  # one accepted batch: one entry
    await queue.put("console", events("f"))
    first = await queue.claim(2)
    assert first is not None and ids_of(first) == ["a", "b"]
    assert (queue.unclaimed, queue.depth) == (1, 6)  # the rest of the entry is this consumer's, sent before "f"
    assert await queue.claim(2) == first  # a retry: the same slice, the same batch_id
    got = [first.batch_id]
    assert await queue.ack(first.batch_id) == 2
    while (batch := await queue.claim(2)) is not None:
        got.append(batch.batch_id)
        assert await queue.ack(batch.batch_id) == batch.count
    assert len(set(got)) == 4
    assert invariant(queue) == (6, 6, 0, 0, 0)
    assert redis_keys(queue) == {"stream", "counters"}  # every record of the cut entry went with it


def redis_keys(queue: RedisQueue) -> set[str]:
    """The queue's keys but the recent list, the heartbeats and the consumers' lists, without the prefix."""
    with redis.Redis.from_url(queue.url) as client:
        found = cast(list[bytes], client.keys(queue.keys.prefix + "*"))
    names = {k.decode()[len(queue.keys.prefix) :] for k in found}
    return {n for n in names if not n.startswith(("alive:", "held:")) and n != "recent"}


async def test_a_split_batch_is_sent_next_as_two_halves_of_new_ids(make_queue: Any) -> None:
    queue = await make_queue()
    await queue.put("console", events("a", "b", "c"))
    await queue.put("console", events("d"))
    whole = await queue.claim(3)
    assert ids_of(whole) == ["a", "b", "c"]
    assert whole is not None
    await queue.split(whole.batch_id)
    halves = []
    while (batch := await queue.claim(3)) is not None:
        halves.append((batch.batch_id, ids_of(batch)))
        assert await queue.ack(batch.batch_id) == batch.count
    assert [ids for _, ids in halves] == [["a", "b"], ["c"], ["d"]]
    assert len({whole.batch_id, *(bid for bid, _ in halves)}) == 4
    assert invariant(queue) == (4, 4, 0, 0, 0)


async def test_a_batch_idle_past_the_lease_goes_to_another_consumer_whole_with_its_batch_id(make_queue: Any) -> None:
    dead = await make_queue(lease_s=0.2)
    other = await make_queue(lease_s=0.2)
    await dead.put("console", events("a", "b", "c"))
    held = await dead.claim(10)
    assert held is not None
    assert await other.claim(10) is None  # held, not idle yet
    await asyncio.sleep(0.3)
    assert await other.poll() is True
    taken = await other.claim(10)
    assert taken == held
    assert (await other.ack(taken.batch_id), await dead.ack(held.batch_id)) == (3, 0)
    assert invariant(other) == (3, 3, 0, 0, 0)


async def test_a_live_consumer_keeps_its_batch_past_the_lease_by_polling(make_queue: Any) -> None:
    live = await make_queue(lease_s=0.3)
    other = await make_queue(lease_s=0.3)
    await live.put("console", events("a"))
    held = await live.claim(10)
    assert held is not None
    for _ in range(4):
        await asyncio.sleep(0.1)
        await live.poll()
    assert await other.claim(10) is None
    assert await live.ack(held.batch_id) == 1


@pytest.mark.parametrize(
    ("options", "second"),
    [({"max_events": 3}, events("c", "d")), ({"max_bytes": 100}, events("c", "d"))],
)
async def test_a_full_queue_refuses_with_503_and_trims_nothing(
    make_queue: Any, options: dict[str, Any], second: list[dict[str, Any]]
) -> None:
    queue = await make_queue(**options)
    await queue.put("console", events("a", "b"))
    with pytest.raises(SinkRefused) as refused:
        await queue.put("console", second)
    assert (refused.value.status, refused.value.retry_after, refused.value.reason) == (503, 5, "spool is full")
    assert ids_of(await queue.claim(10)) == ["a", "b"]
    assert invariant(queue) == (2, 0, 2, 0, 0)


async def test_a_dead_lettered_batch_moves_to_the_dead_letter_stream(
    make_queue: Any, redis_server: RedisServer
) -> None:
    queue = await make_queue()
    await queue.put("console", events("a", "b"))
    batch = await queue.claim(10)
    assert batch is not None
    assert await queue.dead_letter(batch.batch_id, 400) == 2
    # As above: a bytes client, and every entry of a stream has its fields.
    rows = cast(list[tuple[bytes, dict[bytes, bytes]]], redis_server.client().xrange(queue.keys.dead))
    assert [(f[b"batch_id"].decode(), f[b"status"], json.loads(f[b"e"])["event_id"]) for _, f in rows] == [
        (batch.batch_id, b"400", "a"),
        (batch.batch_id, b"400", "b"),
    ]
    assert invariant(queue) == (2, 0, 0, 2, 0)


async def test_events_past_the_maximum_age_expire_claimed_or_not(make_queue: Any) -> None:
    queue = await make_queue(max_age_s=0.2)
    await queue.put("console", events("a", "b"))
    await queue.claim(1)
    await asyncio.sleep(0.3)
    assert await queue.expire() == 2
    assert (await queue.claim(10), queue.depth) == (None, 0)
    assert invariant(queue) == (2, 0, 0, 0, 2)


async def test_a_redis_that_goes_away_refuses_puts_with_503_until_it_is_back(
    make_queue: Any, redis_server: RedisServer
) -> None:
    queue = await make_queue()
    await queue.put("console", events("a"))
    redis_server.stop()
    with pytest.raises(SinkRefused) as refused:
        await queue.put("console", events("b"))
    assert (refused.value.status, refused.value.label, refused.value.reason) == (
        503,
        "queue_unavailable",
        "queue is unavailable",
    )
    assert queue.writable is False
    redis_server.start()  # appendonly: the accepted event survived the restart
    await queue.poll()
    assert queue.writable is True
    assert ids_of(await queue.claim(10)) == ["a"]
    assert invariant(queue) == (1, 0, 1, 0, 0)


async def test_require_aof_refuses_a_redis_without_appendonly(tmp_path: Path) -> None:
    with running_redis(tmp_path / "r", appendonly="no") as server:
        queue = RedisQueue(server.url, max_events=1, max_bytes=1, max_age_s=1, require_aof=True)
        with pytest.raises(QueueError) as error:
            await queue.open()
        await queue.close()
    assert str(error.value) == (
        f"--queue-require-aof: redis queue redis://127.0.0.1:{server.port}/0: appendonly no, no snapshots: "
        "a Redis restart loses every queued event"
    )


@pytest.mark.parametrize(
    ("appendonly", "appendfsync", "save", "line"),
    [
        ("yes", "always", "", "appendonly yes, appendfsync always: a Redis crash can lose nothing acknowledged"),
        (
            "yes",
            "everysec",
            "",
            "appendonly yes, appendfsync everysec: a Redis crash can lose up to about one second of accepted batches",
        ),
        (
            "no",
            "everysec",
            "3600 1",
            "appendonly no, snapshots (save 3600 1): a Redis crash can lose everything since the last one",
        ),
    ],
)
def test_the_durability_line_says_what_a_crash_can_lose(
    appendonly: str, appendfsync: str, save: str, line: str
) -> None:
    assert describe_persistence(appendonly, appendfsync, save) == (line, appendonly == "yes")


async def test_the_watch_polls_on_the_injected_sleep_and_wakes_the_forwarder_for_work(make_queue: Any) -> None:
    queue = await make_queue()
    other = await make_queue()  # another process of the group
    sleeps: list[float] = []
    wakes: list[int] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            await other.put("console", events("x"))  # accepted by the other process between two polls
        if len(sleeps) == 4:
            raise asyncio.CancelledError  # the sink stops the watch by cancelling it

    with pytest.raises(asyncio.CancelledError):
        await queue.watch(lambda: wakes.append(len(sleeps)), sleep)
    assert sleeps == [0.5, 0.5, 0.5, 0.5]
    # Woken after the poll that followed the other process's put, once per poll that finds the work unclaimed.
    assert wakes == [2, 3]
    assert queue.unclaimed == 1


def older_put(queue: RedisQueue, client: Any, topic: str, batch: list[OutboundEvent]) -> list[str]:
    """What an older version's put left: one entry per event (`t`, `e`), counted as events; the entry ids."""
    texts = [json.dumps(e, separators=(",", ":")) for e in batch]
    ids = [client.xadd(queue.keys.stream, {"t": topic, "e": text}).decode() for text in texts]
    for name in ("accepted", "queued", "unclaimed", f"acct:accepted:{topic}", f"acct:queued:{topic}"):
        client.hincrby(queue.keys.counters, name, len(texts))
    client.hincrby(queue.keys.counters, "bytes", sum(len(text) for text in texts))
    return ids


async def test_entries_an_older_version_left_one_event_each_are_delivered_with_the_new_ones(
    make_queue: Any, redis_server: RedisServer
) -> None:
    queue = await make_queue()
    client = redis_server.client()
    older_put(queue, client, "console", events("o1", "o2"))
    await queue.put("console", events("n1", "n2"))
    older_put(queue, client, "cli", events("o3"))
    await queue.poll()
    assert queue.unclaimed == 5
    got = []
    while (batch := await queue.claim(3)) is not None:
        got.append((batch.topic, ids_of(batch)))
        assert await queue.ack(batch.batch_id) == batch.count
    assert got == [("console", ["o1", "o2"]), ("console", ["n1", "n2"]), ("cli", ["o3"])]
    assert invariant(queue) == (5, 5, 0, 0, 0)
    assert redis_keys(queue) == {"stream", "counters"}
    client.close()


async def test_a_batch_an_older_version_claimed_is_taken_over_after_the_lease_with_its_batch_id(
    make_queue: Any, redis_server: RedisServer
) -> None:
    queue = await make_queue(lease_s=0.2)
    client = redis_server.client()
    ids = older_put(queue, client, "console", events("o1", "o2"))
    # The older version's claim: read by its consumer, recorded as a batch of entry ids, listed as held.
    client.xreadgroup("forwarders", "old:1:abc", {queue.keys.stream: ">"}, count=2)
    client.hset(
        queue.keys.prefix + "batch:b-old", mapping={"owner": "old:1:abc", "topic": "console", "ids": " ".join(ids)}
    )
    client.hset(queue.keys.batch_of, mapping=dict.fromkeys(ids, "b-old"))
    client.rpush(queue.keys.prefix + "held:old:1:abc", "b-old")
    client.hincrby(queue.keys.counters, "unclaimed", -2)
    await asyncio.sleep(0.3)
    assert await queue.poll() is True
    taken = await queue.claim(10)
    assert taken is not None and (taken.batch_id, ids_of(taken)) == ("b-old", ["o1", "o2"])
    assert await queue.ack(taken.batch_id) == 2
    assert invariant(queue) == (2, 2, 0, 0, 0)
    client.close()


async def test_a_cut_entry_is_taken_over_whole_after_the_lease(make_queue: Any) -> None:
    dead = await make_queue(lease_s=0.2)
    other = await make_queue(lease_s=0.2)
    await dead.put("console", events("a", "b", "c"))
    held = await dead.claim(2)
    assert held is not None and ids_of(held) == ["a", "b"]
    await asyncio.sleep(0.3)
    taken = await other.claim(2)
    assert taken == held  # the slice keeps its batch_id; the rest of the entry comes with it
    assert await other.ack(taken.batch_id) == 2
    rest = await other.claim(2)
    assert ids_of(rest) == ["c"] and await other.ack(rest.batch_id if rest else "") == 1
    assert await dead.ack(held.batch_id) == 0
    assert invariant(other) == (3, 3, 0, 0, 0)
    assert redis_keys(other) == {"stream", "counters"}


async def test_a_slice_dead_lettered_and_the_rest_expired_each_count_their_own_events(
    make_queue: Any, redis_server: RedisServer
) -> None:
    queue = await make_queue(max_age_s=0.2)
    await queue.put("console", events("a", "b", "c", "d", "e"))
    first = await queue.claim(2)
    assert first is not None
    assert await queue.dead_letter(first.batch_id, 400) == 2
    rows = cast(list[tuple[bytes, dict[bytes, bytes]]], redis_server.client().xrange(queue.keys.dead))
    assert [json.loads(f[b"e"])["event_id"] for _, f in rows] == ["a", "b"]
    await asyncio.sleep(0.3)
    assert await queue.expire() == 3
    assert (await queue.claim(2), queue.depth) == (None, 0)
    assert invariant(queue) == (5, 0, 0, 2, 3)
    assert redis_keys(queue) == {"stream", "counters", "dead"}


async def test_an_older_versions_process_in_the_group_is_said_once_as_an_error(
    make_queue: Any, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    queue = await make_queue()
    client = redis_server.client()
    client.xgroup_createconsumer(queue.keys.stream, "forwarders", "old:7:abc")
    client.set(queue.keys.prefix + "alive:old:7:abc", "1", px=30_000)  # an older version's heartbeat
    await queue.poll()
    await queue.poll()
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == [
        "an older console-proxy (consumer old:7:abc) shares the redis queue and cannot read the entries this "
        "version writes; stop it or upgrade it (every process of a group runs the same version)"
    ]
    client.close()


async def test_a_claim_takes_whole_entries_up_to_max_events(make_queue: Any) -> None:
    queue = await make_queue()
    for i in range(10):
        await queue.put("console", events(*(f"e{i}.{k}" for k in range(3))))
    await queue.put("cli", events("x"))
    sizes = []
    while (batch := await queue.claim(10)) is not None:
        sizes.append((batch.topic, batch.count, ids_of(batch)[0]))
        assert await queue.ack(batch.batch_id) == batch.count
    # Three entries of three fill nine of ten; the tenth entry alone; then the other topic.
    assert sizes == [
        ("console", 9, "e0.0"),
        ("console", 9, "e3.0"),
        ("console", 9, "e6.0"),
        ("console", 3, "e9.0"),
        ("cli", 1, "x"),
    ]
    assert invariant(queue) == (31, 31, 0, 0, 0)

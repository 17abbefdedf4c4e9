"""The queue on Redis Streams: any number of processes append to one stream and forward it as one consumer group.

The same role as the SQLite spool for the forwarder (put, claim, ack, dead_letter, expire, stats), with the
accounting kept in Redis so that `accepted = forwarded + queued + dead_lettered + expired` holds for the group.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from console_proxy.core.accounting import Answer
from console_proxy.core.errors import ConsoleProxyError, SinkRefused
from console_proxy.core.events import OutboundEvent, encode_envelope, encode_event, new_id
from console_proxy.core.metrics import QueueStats
from console_proxy.delivery.queue import QUEUE_RETRY_AFTER_S, Batch
from console_proxy.delivery.redis import scripts as redis_scripts
from console_proxy.delivery.redis.accounts import answer_args, decoded, restore_args
from console_proxy.delivery.redis.client import (
    REDIS_ERRORS,
    async_client,
    client_read_recent,
    close_async_client,
    durability_line,
    loses_nothing,
    queue_keys,
    read_gauges,
    read_queue_stats,
    say_older,
    sync_client,
)
from console_proxy.delivery.sink import BatchSizes, Charge

logger = logging.getLogger("console_proxy")

GROUP = "forwarders"
DEFAULT_LEASE_S = 30.0
# Events older than the maximum age are removed this many at a time (one script call each).
EXPIRE_CHUNK = 1000


class QueueError(ConsoleProxyError):
    """The Redis queue cannot be used as configured (for example: it must have appendonly on and has not)."""


def _consumer_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


# How often a process looks at the shared queue for work other processes accepted (or left behind), renews
# its claims, retries a Redis that went away, and sees whether Redis lost its data.
POLL_INTERVAL_S = 0.5
# While Redis keeps nothing (appendonly no), it is said again this often.
PERSISTENCE_EVERY_S = 600.0
# The counters read at each poll: the last reading is what a Redis that lost its data is restored from.
_COUNTERS = ("accepted", "forwarded", "dead_lettered", "expired", "lost", "queued", "bytes")


class RedisQueue:
    """A bounded queue on a Redis stream; this process is one consumer (`consumer`) of the group.

    `depth` and `unclaimed` are hints for the forwarder, refreshed by every call and by `poll()`: `unclaimed`
    counts the group's events not yet handed to any consumer, `depth` adds what this consumer holds (and 1
    while a batch of a consumer idle for the lease waits to be taken over).
    """

    def __init__(
        self,
        url: str,
        *,
        max_events: int,
        max_bytes: int,
        max_age_s: float,
        lease_s: float = DEFAULT_LEASE_S,
        require_aof: bool = False,
        prefix: str | None = None,
        clock: Callable[[], float] = time.time,
        poll_interval_s: float = POLL_INTERVAL_S,
        persistence_every_s: float = PERSISTENCE_EVERY_S,
    ) -> None:
        self.url = url
        self.poll_interval_s = poll_interval_s
        self.persistence_every_s = persistence_every_s
        self._persistence_said_at = time.monotonic()
        # The queue's epoch as this process last saw it, and the counters then (docs/delivery.md, "Redis that
        # keeps nothing").
        self._epoch: str | None = None
        self._last: dict[str, int] = {}
        self.keys = queue_keys(prefix)
        self.consumer = _consumer_name()
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._max_age_ms = int(max_age_s * 1000)
        self._lease_ms = max(1, int(lease_s * 1000))
        self._require_aof = require_aof
        self._clock = clock
        self._client: Any = None
        self._scripts: dict[str, Any] = {}
        self._held = 0
        self._older: set[str] = set()
        self._orphans = False
        self._prefetched: Batch | None = None
        self._max_claim = 1
        self._queued = 0
        self._bytes = 0
        self.unclaimed = 0
        self.depth = 0
        self.writable = False
        self._sizes = BatchSizes(max_events, max_bytes)
        self._down = False
        self.durability: str | None = None

    # ---- lifecycle -------------------------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, create the group and read the persistence settings; a Redis that is down only leaves the
        queue unavailable (`writable` false) until `poll()` reaches it. Raises QueueError for a Redis without
        appendonly when `require_aof`."""
        self._client = async_client(self.url)
        for name in ("PUT", "CLAIM", "FINISH", "ACK_NEXT", "SPLIT", "EXPIRE", "TOUCH", "LEAVE", "EPOCH"):
            self._scripts[name] = self._client.register_script(getattr(redis_scripts, name))
        try:
            await self._connect()
        except REDIS_ERRORS as exc:
            self.unavailable(exc)

    async def close(self) -> None:
        if self._client is not None:
            if self.writable:
                try:
                    await self._run("LEAVE", self.consumer)
                except Exception as exc:  # a consumer left listed leaves within the lease, by the others' polls
                    logger.warning("could not leave the redis queue's group: %s", type(exc).__name__)
            await close_async_client(self._client)
            self._client = None

    async def _connect(self) -> None:
        line, aof = await durability_line(self._client, self.url)
        self._say_durability(line, aof, again=False)
        if self._require_aof and not aof:
            raise QueueError(f"--queue-require-aof: {line}")
        await self._ensure_group()
        await self._run("TOUCH", self.consumer, self._lease_ms)  # listed in the group from the start
        await self._check_epoch()
        if self._down:
            logger.warning("redis queue reachable again")
        self._down = False
        self.writable = True

    async def _ensure_group(self) -> None:
        try:
            await self._client.xgroup_create(self.keys.stream, GROUP, id="0", mkstream=True)
        except Exception as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    kept_where = "in the redis queue"

    def intact(self) -> bool:
        return True

    async def watch(self, wake: Callable[[], None], sleep: Callable[[float], Awaitable[None]]) -> None:
        """Poll the group every `poll_interval_s` for work other processes accepted or left behind (and renew this
        process's claims, and retry a Redis that went away); wake the forwarder when there is some."""
        while True:
            await sleep(self.poll_interval_s)
            try:
                if await self.poll():
                    wake()
            except REDIS_ERRORS as exc:
                self.unavailable(exc)
            except QueueError as exc:
                logger.error("%s", exc)
            except Exception as exc:  # a script error must not end the watch
                logger.error("redis queue poll failed: %s: %s", type(exc).__name__, exc)

    def unavailable(self, exc: BaseException) -> None:
        """Redis cannot be reached: not ready, puts refused, until `poll()` reaches it again."""
        if not self._down:
            logger.error(
                "redis queue unavailable (%s: %s); ingestion answers 503; trying again every %gs",
                type(exc).__name__,
                exc,
                self.poll_interval_s,
            )
        self._down = True
        self.writable = False

    # ---- operations ------------------------------------------------------------------------------------------

    async def put(self, topic: str, events: Sequence[OutboundEvent]) -> None:
        """Append the events to the stream (one entry) before returning, or raise SinkRefused; never partially."""
        await self._put(topic, events, None)

    async def put_charged(self, topic: str, events: Sequence[OutboundEvent], charge: Charge) -> bool:
        """`put`, with the client's budget taken in the same script first: False when it is spent."""
        return await self._put(topic, events, charge)

    async def _put(self, topic: str, events: Sequence[OutboundEvent], charge: Charge | None) -> bool:
        texts = [encode_event(event) for event in events]
        self._sizes.saw(len(texts), sum(len(text) for text in texts))
        budget: list[object] = ["", "", ""] if charge is None else [charge.limit, charge.window_s, charge.cost]
        keys = charge.keys if charge else ()
        try:
            reply = await self._run("PUT", self._max_events, self._max_bytes, topic, *budget, *texts, keys=keys)
        except REDIS_ERRORS as exc:
            raise SinkRefused(
                "queue is unavailable", label="queue_unavailable", retry_after=QUEUE_RETRY_AFTER_S
            ) from exc
        if int(reply[2]) == -1:
            return False
        if not reply[2]:
            raise SinkRefused("spool is full", label="spool_full", retry_after=QUEUE_RETRY_AFTER_S)
        # The last reading keeps up with this process's own puts, so that a loss right after them is counted whole.
        for name in ("accepted", f"acct:accepted:{topic}", f"acct:queued:{topic}"):
            self._last[name] = self._last.get(name, 0) + len(texts)
        self._last["queued"] = int(reply[0])
        return True

    async def claim(self, max_events: int) -> Batch | None:
        """A batch this consumer holds, else one a dead consumer held (same batch_id), else a new one; or None."""
        self._max_claim = max_events
        if self._prefetched is not None:
            batch, self._prefetched = self._prefetched, None
            return batch
        reply = await self._run("CLAIM", self.consumer, max_events, self._lease_ms, new_id())
        self._orphans = False
        return self._batch(reply, 2)

    async def ack(self, batch_id: str, answer: Answer | None = None) -> int:
        """The collector took the batch: acknowledge and delete its entries, count them forwarded and, per topic,
        as its `answer` counted them (uncounted without one). While a full batch waits, the same script claims it
        for the next `claim()` (one round trip, one AOF fsync fewer)."""
        self._prefetched = None
        reply = await self._run(
            "ACK_NEXT",
            batch_id,
            f"{self._clock():.3f}",
            self.consumer,
            self._max_claim,
            self._lease_ms,
            new_id(),
            *answer_args(answer),
        )
        self._prefetched = self._batch(reply, 3)
        return int(reply[2])

    def _batch(self, reply: list[Any], at: int) -> Batch | None:
        if len(reply) <= at:
            self._held = 0
            self._hint()
            return None
        self._held = int(reply[at])
        batch_id, topic, count = reply[at + 1].decode(), reply[at + 2].decode(), int(reply[at + 3])
        # Each piece is events' JSON joined by newlines, which compact JSON never holds: commas make the array.
        data = b",".join(reply[at + 4 :]).replace(b"\n", b",").decode()
        self._hint()
        return Batch(batch_id=batch_id, topic=topic, count=count, body=encode_envelope(topic, batch_id, [data]))

    async def dead_letter(self, batch_id: str, status: int) -> int:
        """The collector refused the batch for good: move its entries to the dead-letter stream."""
        return await self._finish(batch_id, status)

    async def split(self, batch_id: str) -> None:
        """The collector found the batch too large (413): it becomes two batches of new ids, sent next."""
        self._prefetched = None
        await self._run("SPLIT", batch_id, new_id(), new_id())

    async def _finish(self, batch_id: str, status: int) -> int:
        reply = await self._run("FINISH", batch_id, f"{self._clock():.3f}", status)
        self._held = 0
        self._hint()
        return int(reply[2])

    async def expire(self) -> int:
        """Remove events older than the maximum age (by Redis's clock), claimed or not, and count them expired."""
        total = 0
        while True:
            reply = await self._run("EXPIRE", self._max_age_ms, EXPIRE_CHUNK)
            total += int(reply[2])
            if not reply[3]:
                break
        self._hint()
        return total

    async def poll(self) -> bool:
        """Reconnect if need be, keep this consumer's batches from looking idle, refresh the hints; True when
        there is work (events to claim, or a batch of a consumer idle for the lease)."""
        if not self.writable:
            await self._connect()
        reply = await self._run("TOUCH", self.consumer, self._lease_ms)
        self._held = int(reply[2])
        self._older = say_older({name.decode() for name in reply[3:]}, self._older)
        await self._check_epoch()
        # The whole hash in one reading: the per-topic accounts too, restored from it if Redis loses it.
        self._last = {name: 0 for name in _COUNTERS} | decoded(await self._client.hgetall(self.keys.counters))
        self._queued, self._bytes = self._last["queued"], self._last["bytes"]
        if time.monotonic() - self._persistence_said_at >= self.persistence_every_s:
            self._say_durability(*await durability_line(self._client, self.url), again=True)
        pending = await self._client.xpending_range(
            self.keys.stream, GROUP, min="-", max="+", count=1, idle=self._lease_ms
        )
        self._orphans = bool(pending)
        self._hint()
        return int(reply[1]) > 0 or self._orphans

    def _say_durability(self, line: str, aof: bool, *, again: bool) -> None:
        """The persistence line: once when it changes, and again every `persistence_every_s` while Redis keeps
        nothing, as a warning (a restart then loses every queued event)."""
        keeps_nothing = not aof and "persistence unknown" not in line
        if self.durability != line or (again and keeps_nothing):
            if keeps_nothing:
                minutes = self.persistence_every_s / 60
                logger.warning("%s (said again every %g minutes while it is so)", line, minutes)
            else:
                # Where a Redis crash or restart can lose acknowledged events, that is a warning, not news.
                logger.log(logging.INFO if loses_nothing(line) else logging.WARNING, "%s", line)
            self.durability = line
        if again or keeps_nothing:
            self._persistence_said_at = time.monotonic()

    async def _check_epoch(self) -> None:
        """Whether Redis lost the queue since the last poll: its epoch gone. Then the counters are added back from
        the last reading and what was queued is counted as lost (by the first process to see it), and said once."""
        last = [self._last.get(name, 0) for name in _COUNTERS[:6]]
        reply = await self._run("EPOCH", new_id(), self._epoch or "", *last, *restore_args(self._last))
        state, epoch, lost = int(reply[2]), reply[3].decode(), int(reply[4])
        if state == 2:
            logger.error(
                "the redis queue lost its data (a restart without persistence, or a flush): %d accepted events that "
                "were queued are gone, counted as lost",
                lost,
            )
        elif state == 1 and self._epoch is not None:
            logger.error(
                "the redis queue lost its data (a restart without persistence, or a flush); another process counted "
                "what was queued as lost"
            )
        self._epoch = epoch

    def has_room(self, events: int, size: int) -> bool:
        """Room in the group's queue for `events` more events of `size` bytes, by the last reading (refreshed
        twice a second by `poll()`; a hint for /readyz)."""
        return self._queued + events <= self._max_events and self._bytes + size <= self._max_bytes

    def ready(self) -> bool:
        """Reachable, and room in the group's queue for a batch like the largest this process was sent."""
        return self.writable and self.has_room(*self._sizes.needed())

    def stats(self) -> QueueStats:
        """The group's counters in one reading (a single HMGET), from any thread (used at each scrape)."""
        with sync_client(self.url) as client:
            return read_queue_stats(client, self.keys)

    def gauges(self) -> list[tuple[str, str, float]]:
        """The group's consumers, entries claimed and not yet acknowledged, batches taken over after the lease,
        and dead letters kept; from any thread (used at each scrape)."""
        with sync_client(self.url) as client:
            return read_gauges(client, self.keys, GROUP)

    async def _run(self, script: str, *args: object, keys: Sequence[str] = ()) -> list[Any]:
        if self._client is None:
            raise SinkRefused("queue is closed", label="shutting_down", retry_after=QUEUE_RETRY_AFTER_S)
        keys = [self.keys.stream, self.keys.counters, self.keys.batch_of, self.keys.dead, *keys]
        argv = [self.keys.prefix, GROUP, *args]
        try:
            reply: list[Any] = await self._scripts[script](keys=keys, args=argv)
        except REDIS_ERRORS as exc:
            self.unavailable(exc)
            # The pool's idle connections went with the server: drop them, or each would fail one more call.
            await self._client.connection_pool.disconnect(inuse_connections=False)
            raise
        except Exception as exc:
            if "NOGROUP" not in str(exc):
                raise
            # The stream (and so the group) is gone: a Redis restarted without persistence, or flushed.
            # The stream (and so the group) is gone: _check_epoch says what was lost, once; this is not news.
            logger.info("the redis queue's consumer group was missing; created it again")
            await self._ensure_group()
            reply = await self._scripts[script](keys=keys, args=argv)
        self._queued, self.unclaimed = int(reply[0]), max(0, int(reply[1]))
        self._hint()
        return reply

    def _hint(self) -> None:
        self.depth = self.unclaimed + self._held + (1 if self._orphans else 0)


# Where /_telemetry/v1/recent reads them (asgi/recent.py).
read_recent = client_read_recent

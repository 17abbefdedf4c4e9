"""The durable queue between ingestion and the forwarder: one SQLite file in WAL mode, written by one thread."""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from console_proxy.core.accounting import Answer
from console_proxy.core.errors import SinkRefused
from console_proxy.core.events import OutboundEvent, encode_envelope, encode_events, new_id
from console_proxy.core.metrics import QueueStats
from console_proxy.delivery.queue import QUEUE_RETRY_AFTER_S, Batch
from console_proxy.delivery.sink import BatchSizes
from console_proxy.delivery.spool.db import SPOOL_FILE_NAME, read_spool_stats, transaction
from console_proxy.delivery.spool.files import SpoolFile
from console_proxy.delivery.spool.held import Held, HeldClaims, no_room, split_in_file
from console_proxy.delivery.spool.thread import Job, SpoolThread, settle
from console_proxy.delivery.spool.writes import DEAD_LETTER_COPY, Ack, Row, insert, remove

__all__ = ["SPOOL_FILE_NAME", "Spool", "read_spool_stats"]

logger = logging.getLogger("console_proxy")

R = TypeVar("R")
# One topic a batch: the oldest unclaimed event's. The batch_id is committed before anything is sent, so a re-send
# after a crash repeats the same batch_id (the Idempotency-Key) with the same event_ids.
_CLAIM = (
    "UPDATE events SET batch_id = ? WHERE seq IN (SELECT seq FROM events WHERE batch_id IS NULL "
    "AND topic = (SELECT topic FROM events WHERE batch_id IS NULL ORDER BY seq LIMIT 1) ORDER BY seq LIMIT ?)"
)
# While claims are held in memory (a full disk), writing them to the file is tried at most this often.
RECORD_EVERY_S = 1.0
_Acks = list[tuple[concurrent.futures.Future[Any], Ack]]


def _closed() -> SinkRefused:
    return SinkRefused("spool is closed", label="shutting_down", retry_after=QUEUE_RETRY_AFTER_S)


class Spool:
    """A bounded durable queue. Every SQLite call runs in one dedicated thread; the async methods wait on it.

    When the file has no room to record a claim or an answer (a full disk), forwarding goes on with them held in
    memory (`held.HeldClaims`) until they can be written."""

    def __init__(
        self, path: Path, *, max_events: int, max_bytes: int, max_age_s: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = path
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._max_age_s = max_age_s
        self._clock = clock
        self._file = SpoolFile(path)
        self._thread: SpoolThread[list[Row] | Ack] = SpoolThread(
            "console-proxy-spool", put_group=self._put_group, on_exit=self._file.close
        )
        # Only the spool thread writes these; other threads read them as hints.
        self.depth = 0
        self.unclaimed = 0
        self._claim_size = 0  # the forwarder's batch size, from its last claim: what a put or an ack claims next
        self._preclaimed: str | None = None  # the batch a put or an ack claimed, not yet returned by claim()
        self.bytes = 0
        self._held = HeldClaims()
        self._record_tried_at = -RECORD_EVERY_S
        self._sizes = BatchSizes(max_events, max_bytes)

    @property
    def writable(self) -> bool:
        return self._file.writable

    @writable.setter
    def writable(self, value: bool) -> None:
        self._file.writable = value

    # ---- lifecycle -------------------------------------------------------------------------------------------

    async def open(self) -> None:
        """Open (or create, or replace a corrupt) spool file and start the spool thread."""
        self._thread.start()
        await self._call(self._do_open)

    async def close(self) -> None:
        """Finish the queued work, close the file and stop the thread."""
        await self._thread.stop()

    # ---- operations ------------------------------------------------------------------------------------------

    async def put(self, topic: str, events: Sequence[OutboundEvent]) -> None:
        """Commit a batch of `topic`, or raise SinkRefused when full or unwritable; never partially."""
        # Whole rows, so that the spool thread only binds them: (event_id, json, bytes, topic, enqueued_at).
        now = self._clock()
        rows: list[Row] = [
            (event["event_id"], text, size, topic, now)
            for event, (text, size) in zip(events, encode_events(events), strict=True)
        ]
        self._sizes.saw(len(rows), sum(row[2] for row in rows))
        await self._thread.put(rows, closed=_closed)

    async def claim(self, max_events: int) -> Batch | None:
        """The oldest batch already claimed (a retry or a re-send after a crash), else a new one of the oldest
        event's topic; None when empty."""
        return await self._call(functools.partial(self._do_claim, max_events))

    async def ack(self, batch_id: str, answer: Answer | None = None) -> int:
        """The collector took the batch: delete its events, count them forwarded and, per topic, as its `answer`
        counted them (uncounted without one), in one transaction."""
        removed: int = await self._thread.put(Ack(batch_id, answer), closed=_closed)  # joins the puts waiting
        return removed

    async def dead_letter(self, batch_id: str, status: int) -> int:
        """The collector refused the batch for good: move its events to the dead-letter table."""
        return await self._call(functools.partial(self._finish, batch_id, "dead_lettered", status))

    async def split(self, batch_id: str) -> None:
        """Claim the events of a batch as two batches of their own (new ids), first half first."""
        await self._call(functools.partial(self._do_split, batch_id))

    async def expire(self) -> int:
        """Remove events older than the maximum age and count them expired."""
        return await self._call(self._do_expire)

    def stats(self) -> QueueStats:
        """A consistent reading in one read transaction, from any thread (used at each metrics scrape).

        Read-only: a scrape never creates a spool file (sqlite3.Error when there is none)."""
        return self._held.counted(self._file.read_stats())

    kept_where = "spooled for the next start"

    def gauges(self) -> list[tuple[str, str, float]]:
        return []  # its figures are all in stats()

    async def watch(self, wake: Callable[[], None], sleep: Callable[[float], Awaitable[None]]) -> None:
        """While claims and answers are held in memory (a full disk), try to write them every RECORD_EVERY_S: the
        forwarder may have nothing left to send that would try. One process owns the file, so nothing else
        arrives that the forwarder was not woken for."""
        while True:
            await sleep(RECORD_EVERY_S)
            if self._held.active:
                with contextlib.suppress(SinkRefused, sqlite3.Error):
                    await self._call(functools.partial(self._record_held, None, now=True))

    def has_room(self, events: int, size: int) -> bool:
        """Room for `events` more events of `size` bytes in all, by the last known depth (a hint for /readyz)."""
        return self.depth + events <= self._max_events and self.bytes + size <= self._max_bytes

    def intact(self) -> bool:
        """The path still names the file this spool opened (a hint for /readyz, from any thread)."""
        return self._file.intact()

    def can_take(self, events: int, size: int) -> bool:
        """Whether a batch of `events` events and `size` bytes would be taken now (for /readyz, from any thread):
        room within the bounds, and the file fit for writing it (`SpoolFile.fit_for`); not while what was
        delivered cannot even be removed."""
        return self.has_room(events, size) and not self._held.done and self._file.fit_for(size)

    def ready(self) -> bool:
        """Whether a batch like the largest this spool was sent would be taken now (`can_take`)."""
        return self.can_take(*self._sizes.needed())

    async def _call(self, run: Callable[[], R]) -> R:
        return await self._thread.call(functools.partial(self._guarded, run), closed=_closed)

    # ---- on the spool thread ---------------------------------------------------------------------------------

    def _guarded(self, run: Callable[[], R]) -> R:
        """`run()` once the side files are fit for SQLite (SinkRefused otherwise); they are looked at again after."""
        self._file.guard()
        try:
            return run()
        finally:
            self._file.seen()

    def _do_open(self) -> None:
        conn = self._file.open()
        self.depth, self.bytes = conn.execute("SELECT count(*), coalesce(sum(bytes), 0) FROM events").fetchone()
        (self.unclaimed,) = conn.execute("SELECT count(*) FROM events WHERE batch_id IS NULL").fetchone()
        self._file.cleared()

    def _put_group(self, jobs: list[Job[list[Row] | Ack]]) -> None:
        """The puts and acks waiting together, in one transaction (one fsync); an ack whose transaction failed is
        done again on its own."""
        depth, size = self.depth, self.bytes
        taken: list[concurrent.futures.Future[Any]] = []
        refused: list[concurrent.futures.Future[Any]] = []
        accepted: list[list[Row]] = []
        acks: _Acks = []  # those that join the transaction
        alone: _Acks = []  # those that cannot: done on their own (the claims are held in memory)
        for job in jobs:
            if isinstance(job.put, Ack):
                held = self._held.active or job.put.batch_id in self._held.held
                (alone if held else acks).append((job.future, job.put))
                continue
            rows = job.put or []
            need = sum(row[2] for row in rows)
            if depth + len(rows) > self._max_events or size + need > self._max_bytes:
                refused.append(job.future)
                continue
            accepted.append(rows)
            depth, size = depth + len(rows), size + need
            taken.append(job.future)
        if len(alone) == len(jobs):  # only acks that cannot join: nothing for a transaction of the group's
            return self._finish_alone(alone)
        removed: list[int] = []
        try:
            self._file.guard()
            self._file.check_file()
            conn = self._file.db()
            unclaimed = self.unclaimed + depth - self.depth
            with transaction(conn):
                insert(conn, accepted)
                for _, ack in acks:
                    n, gone, was_unclaimed = remove(
                        conn, "batch_id = ?", (ack.batch_id,), "forwarded", now=self._clock(), answer=ack.answer
                    )
                    depth, size, unclaimed = depth - n, size - gone, unclaimed - was_unclaimed
                    removed.append(n)
                preclaimed, claimed = self._claim_waiting(conn, depth, unclaimed)
        except (sqlite3.Error, OSError, SinkRefused) as exc:
            refusal = exc if isinstance(exc, SinkRefused) else self._file.failed(exc, "put")
            for future in (job.future for job in jobs if not isinstance(job.put, Ack)):
                settle(future, error=refusal.copy())
            taken, refused, alone, acks, removed = [], [], acks + alone, [], []  # rolled back: each ack alone
        else:
            self.depth, self.bytes, self.unclaimed = depth, size, unclaimed - claimed
            self._preclaimed = preclaimed or self._preclaimed
            self._file.cleared()
        finally:
            self._file.seen()
        for future in taken:
            settle(future, None)
        for future in refused:
            settle(future, error=SinkRefused("spool is full", label="spool_full", retry_after=QUEUE_RETRY_AFTER_S))
        for (future, _), n in zip(acks, removed, strict=True):
            settle(future, n)
        self._finish_alone(alone)

    def _finish_alone(self, acks: _Acks) -> None:
        for future, ack in acks:
            try:
                settle(future, self._guarded(functools.partial(self._finish, ack.batch_id, "forwarded", 0, ack.answer)))
            except Exception as exc:
                settle(future, error=exc)

    def _do_claim(self, max_events: int) -> Batch | None:
        conn = self._file.db()
        self._record_held(conn)
        if self._held.active:
            return self._claim_held(conn, max_events)
        try:
            return self._claim_in_file(conn, max_events)
        except sqlite3.OperationalError as exc:
            if not no_room(exc):
                raise
            self._hold(exc)
            return self._claim_held(conn, max_events)

    def _claim_held(self, conn: sqlite3.Connection, max_events: int) -> Batch | None:
        before = set(self._held.held)
        batch = self._held.claim(conn, max_events)
        if batch is not None and batch.batch_id in self._held.held and batch.batch_id not in before:
            self.unclaimed -= batch.count  # claimed now, in memory
        return batch

    def _claim_in_file(self, conn: sqlite3.Connection, max_events: int) -> Batch | None:
        if self._preclaimed is not None and max_events != self._claim_size:
            # An ack claimed it for a batch of another size, and nothing was sent under it: let it go.
            released = conn.execute("UPDATE events SET batch_id = NULL WHERE batch_id = ?", (self._preclaimed,))
            self.unclaimed += released.rowcount
        self._preclaimed = None
        self._claim_size = max_events
        row = None
        if self.depth > self.unclaimed:  # exact here, in the spool thread; spares a scan when nothing is claimed
            row = conn.execute("SELECT batch_id FROM events WHERE batch_id IS NOT NULL ORDER BY seq LIMIT 1").fetchone()
        if row is not None:
            batch_id = row[0]
        else:
            batch_id = new_id()
            claimed = conn.execute(_CLAIM, (batch_id, max_events)).rowcount
            if claimed == 0:
                return None
            self.unclaimed -= claimed
        rows = conn.execute("SELECT topic, json FROM events WHERE batch_id = ? ORDER BY seq", (batch_id,)).fetchall()
        topic = rows[0][0]
        body = encode_envelope(topic, batch_id, (text for _, text in rows))
        return Batch(batch_id=batch_id, topic=topic, count=len(rows), body=body)

    def _hold(self, exc: BaseException) -> None:
        """The file has no room to record a claim or an answer: from now on they are held in memory."""
        self._file.writable, self._file.failure = False, "room"
        logger.error(
            "spool %s: the disk is full (%s); forwarding goes on with its claims and deliveries held in memory until "
            "they can be written (a restart before then sends those events again, with the same event_ids)",
            self.path,
            exc,
        )

    def _record_held(self, conn: sqlite3.Connection | None, *, now: bool = False) -> None:
        """Try to write what is held (at most once every RECORD_EVERY_S unless `now`); once it is, the spool is
        back to recording everything in the file."""
        held = self._held
        if not held.active or (not now and time.monotonic() - self._record_tried_at < RECORD_EVERY_S):
            return
        self._record_tried_at = time.monotonic()
        try:
            removed = held.record(conn if conn is not None else self._file.db())
        except sqlite3.Error:
            return
        # The batches held in memory are claimed in the file now; their events were already off `unclaimed`.
        self._file.cleared()
        logger.warning("spool %s: the disk has room again; %d delivered events left the file", self.path, removed)

    def _finish(self, batch_id: str, counter: str, status: int, answer: Answer | None = None) -> int:
        """The collector answered the batch: its events leave the queue, counted under `counter`."""
        conn = self._file.db()
        held = self._held
        if batch_id in held.held:
            return self._finish_held(conn, held.held[batch_id], counter, status, answer)
        copy = None if counter == "forwarded" else (status, self._clock(), batch_id)  # to the dead letters
        try:
            return self._remove("batch_id = ?", (batch_id,), counter, copy, claim_next=copy is None, answer=answer)
        except sqlite3.OperationalError as exc:
            if not no_room(exc):
                raise
            if not held.active:
                self._hold(exc)
            return self._finish_held(conn, held.adopt(conn, batch_id), counter, status, answer)

    def _finish_held(
        self, conn: sqlite3.Connection, batch: Held, counter: str, status: int, answer: Answer | None
    ) -> int:
        n = self._held.finish(batch, counter, status, self._clock(), answer)
        self.depth, self.bytes = self.depth - n, self.bytes - batch.size
        self._record_held(conn)
        return n

    def _remove(
        self,
        where: str,
        args: tuple[Any, ...],
        counter: str,
        copy_args: tuple[Any, ...] | None = None,
        claim_next: bool = False,
        answer: Answer | None = None,
    ) -> int:
        conn = self._file.db()
        preclaimed, claimed = None, 0
        with transaction(conn):
            if copy_args is not None:
                conn.execute(DEAD_LETTER_COPY, copy_args)
            n, size, unclaimed = remove(conn, where, args, counter, now=self._clock(), answer=answer)
            if claim_next:
                preclaimed, claimed = self._claim_waiting(conn, self.depth - n, self.unclaimed - unclaimed)
        self.depth, self.bytes = self.depth - n, self.bytes - size
        self.unclaimed -= unclaimed + claimed
        self._preclaimed = preclaimed or self._preclaimed
        self._file.cleared()
        return int(n)

    def _claim_waiting(self, conn: sqlite3.Connection, depth: int, unclaimed: int) -> tuple[str | None, int]:
        """When no batch is claimed and a full one waits (`depth`, `unclaimed`: after the caller's transaction), claim
        it in that transaction: one commit for both (docs/design.md, "The path of a batch"). (batch_id, claimed)"""
        size = self._claim_size
        if not size or depth > unclaimed or unclaimed < size or self._held.active or self._preclaimed is not None:
            return None, 0
        batch_id = new_id()
        return batch_id, conn.execute(_CLAIM, (batch_id, size)).rowcount

    def _do_split(self, batch_id: str) -> None:
        conn = self._file.db()
        held = self._held
        if batch_id in held.held:
            held.split(held.held[batch_id])
            return
        try:
            split_in_file(conn, batch_id)
        except sqlite3.OperationalError as exc:
            if not no_room(exc):
                raise
            if not held.active:
                self._hold(exc)
            held.split(held.adopt(conn, batch_id))

    def _do_expire(self) -> int:
        if self._held.active:
            return 0  # nothing can be removed now; they expire once the disk has room
        try:
            return self._remove("enqueued_at < ?", (self._clock() - self._max_age_s,), "expired")
        except sqlite3.OperationalError as exc:
            if not no_room(exc):
                raise
            return 0

"""The durable queue between ingestion and the forwarder: one SQLite file in WAL mode, written by one thread."""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import itertools
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from console_proxy.core.errors import SinkRefused
from console_proxy.core.events import OutboundEvent, encode_envelope, encode_events, new_id
from console_proxy.core.metrics import QueueStats
from console_proxy.delivery.queue import QUEUE_RETRY_AFTER_S, Batch
from console_proxy.delivery.spool.db import (
    SPOOL_FILE_NAME,
    connect,
    lock_spool,
    open_spool,
    read_spool_stats,
    read_stats,
)
from console_proxy.delivery.spool.thread import Job, SpoolThread, settle

__all__ = ["SPOOL_FILE_NAME", "Spool", "read_spool_stats"]

logger = logging.getLogger("console_proxy")

R = TypeVar("R")
# (event_id, json, bytes, topic)
Row = tuple[str, str, int, str, float]
# One topic a batch: the oldest unclaimed event's. The batch_id is committed before anything is sent, so a re-send
# after a crash repeats the same batch_id (the Idempotency-Key) with the same event_ids.
_CLAIM = (
    "UPDATE events SET batch_id = ? WHERE seq IN (SELECT seq FROM events WHERE batch_id IS NULL "
    "AND topic = (SELECT topic FROM events WHERE batch_id IS NULL ORDER BY seq LIMIT 1) ORDER BY seq LIMIT ?)"
)
_INSERT_EVENT = "INSERT INTO events (event_id, json, bytes, topic, enqueued_at) VALUES (?, ?, ?, ?, ?)"


def _gone() -> SinkRefused:
    return SinkRefused("spool is missing", label="spool_missing", retry_after=QUEUE_RETRY_AFTER_S)


def _closed() -> SinkRefused:
    return SinkRefused("spool is closed", label="shutting_down", retry_after=QUEUE_RETRY_AFTER_S)


class Spool:
    """A bounded durable queue. Every SQLite call runs in one dedicated thread; the async methods wait on it."""

    def __init__(
        self, path: Path, *, max_events: int, max_bytes: int, max_age_s: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = path
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._max_age_s = max_age_s
        self._clock = clock
        self._thread: SpoolThread[list[Row]] = SpoolThread(
            "console-proxy-spool", put_group=self._put_group, on_exit=self._close_files
        )
        self._conn: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._reader_lock = threading.Lock()
        self._lock_fd: int | None = None
        # (st_dev, st_ino) of the file opened; None before the first open. Puts check that the path still names it.
        self._file_id: tuple[int, int] | None = None
        # Only the spool thread writes these; other threads read them as hints.
        self.depth = 0
        self.unclaimed = 0
        self._claim_size = 0  # the forwarder's batch size, from its last claim: what an ack claims next
        self._preclaimed: str | None = None  # the batch an ack claimed, not yet returned by claim()
        self.bytes = 0
        self.writable = False

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
        await self._thread.put(rows, closed=_closed)

    async def claim(self, max_events: int) -> Batch | None:
        """The oldest batch already claimed (a retry or a re-send after a crash), else a new one of the oldest
        event's topic; None when empty."""
        return await self._call(functools.partial(self._do_claim, max_events))

    async def ack(self, batch_id: str) -> int:
        """The collector took the batch: delete its events and count them forwarded."""
        return await self._call(functools.partial(self._do_ack, batch_id))

    async def dead_letter(self, batch_id: str, status: int) -> int:
        """The collector refused the batch for good: move its events to the dead-letter table."""
        return await self._call(functools.partial(self._do_dead_letter, batch_id, status))

    async def split(self, batch_id: str) -> None:
        """Claim the events of a batch as two batches of their own (new ids), first half first."""
        await self._call(functools.partial(self._do_split, batch_id))

    async def expire(self) -> int:
        """Remove events older than the maximum age and count them expired."""
        return await self._call(self._do_expire)

    def stats(self) -> QueueStats:
        """A consistent reading in one read transaction, from any thread (used at each metrics scrape).

        Read-only: a scrape never creates a spool file (sqlite3.Error when there is none)."""
        with self._reader_lock:
            if self._reader is None:
                self._reader = connect(self.path, readonly=True)
            return read_stats(self._reader)

    kept_where = "spooled for the next start"

    def gauges(self) -> list[tuple[str, str, float]]:
        return []  # its figures are all in stats()

    async def watch(self, wake: Callable[[], None], sleep: Callable[[float], Awaitable[None]]) -> None:
        return  # one process owns the file: nothing arrives that the forwarder was not woken for

    def has_room(self, events: int, size: int) -> bool:
        """Room for `events` more events of `size` bytes in all, by the last known depth (a hint for /readyz)."""
        return self.depth + events <= self._max_events and self.bytes + size <= self._max_bytes

    def intact(self) -> bool:
        """The path still names the file this spool opened (a hint for /readyz, from any thread)."""
        return self._file_id is None or self._current_file_id() == self._file_id

    def _drop_reader(self) -> None:
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    async def _call(self, run: Callable[[], R]) -> R:
        return await self._thread.call(run, closed=_closed)

    # ---- on the spool thread ---------------------------------------------------------------------------------

    def _close_files(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        self._drop_reader()

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self._do_open()
        assert self._conn is not None
        return self._conn

    def _current_file_id(self) -> tuple[int, int] | None:
        try:
            named = os.stat(self.path)
        except FileNotFoundError:
            return None
        return named.st_dev, named.st_ino

    def _check_file(self) -> None:
        """Before a put: the path must still name the file this spool wrote, or nothing is acknowledged.

        A deleted spool is not re-created behind the operator's back (503 until it is back, or a restart); a
        replaced one is opened in its place."""
        if self._conn is None or self._file_id is None or self._current_file_id() == self._file_id:
            return
        logger.error("spool %s was deleted or replaced while open; batches are refused until it is back", self.path)
        self._drop_reader()
        # SQLite does not delete the -wal of a file renamed while open, and would replay its frames into whatever
        # file is opened at the path next. Checkpoint them into the file they belong to (its inode is still open)
        # and leave an empty -wal behind.
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._conn.close()
        self._conn = None
        self.writable = False
        raise _gone()

    def _do_open(self) -> None:
        if self._file_id is not None and not self.path.exists():
            self.writable = False
            raise _gone()  # was open, then deleted: never quietly start an empty spool in its place
        try:
            if self._lock_fd is None:
                self._lock_fd = lock_spool(self.path)
            self._conn = open_spool(self.path)
            self._file_id = self._current_file_id()
        except (sqlite3.Error, OSError) as exc:
            self.writable = False
            logger.error("spool %s cannot be opened: %s", self.path, exc)
            raise SinkRefused("spool is unwritable", label="spool_unwritable", retry_after=QUEUE_RETRY_AFTER_S) from exc
        self._drop_reader()
        self.depth, self.bytes = self._conn.execute("SELECT count(*), coalesce(sum(bytes), 0) FROM events").fetchone()
        (self.unclaimed,) = self._conn.execute("SELECT count(*) FROM events WHERE batch_id IS NULL").fetchone()
        self.writable = True

    def _put_group(self, puts: list[Job[list[Row]]]) -> None:
        depth, size = self.depth, self.bytes
        taken: list[concurrent.futures.Future[Any]] = []
        refused: list[concurrent.futures.Future[Any]] = []
        accepted: list[list[Row]] = []
        try:
            self._check_file()
            conn = self._db()
            for put in puts:
                rows = put.put or []
                need = sum(row[2] for row in rows)
                if depth + len(rows) > self._max_events or size + need > self._max_bytes:
                    refused.append(put.future)
                    continue
                accepted.append(rows)
                depth, size = depth + len(rows), size + need
                taken.append(put.future)
            conn.execute("BEGIN IMMEDIATE")
            try:
                # One statement for the whole group, prepared once and run for every row.
                conn.executemany(_INSERT_EVENT, itertools.chain.from_iterable(accepted))
                added = depth - self.depth
                conn.execute("UPDATE counters SET value = value + ? WHERE name = 'accepted'", (added,))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except (sqlite3.Error, OSError, SinkRefused) as exc:
            self.writable = False
            refusal = exc if isinstance(exc, SinkRefused) else None
            if refusal is None:
                logger.error("spool %s is unwritable: %s", self.path, exc)
                refusal = SinkRefused("spool is unwritable", label="spool_unwritable", retry_after=QUEUE_RETRY_AFTER_S)
            for put in puts:
                settle(put.future, error=refusal.copy())
            return
        self.unclaimed += depth - self.depth
        self.depth, self.bytes, self.writable = depth, size, True
        for future in taken:
            settle(future, None)
        for future in refused:
            settle(future, error=SinkRefused("spool is full", label="spool_full", retry_after=QUEUE_RETRY_AFTER_S))

    def _do_claim(self, max_events: int) -> Batch | None:
        conn = self._db()
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

    def _remove(
        self,
        where: str,
        args: tuple[Any, ...],
        counter: str,
        extra: str | None = None,
        extra_args: tuple[Any, ...] = (),
        claim_next: int = 0,
    ) -> int:
        conn = self._db()
        claimed, preclaimed = 0, None
        conn.execute("BEGIN IMMEDIATE")
        try:
            if extra is not None:
                conn.execute(extra, extra_args)
            n, size, unclaimed = conn.execute(
                f"SELECT count(*), coalesce(sum(bytes), 0), count(*) - count(batch_id) FROM events WHERE {where}", args
            ).fetchone()
            conn.execute(f"DELETE FROM events WHERE {where}", args)
            conn.execute("UPDATE counters SET value = value + ? WHERE name = ?", (n, counter))
            if counter == "forwarded" and n:
                conn.execute("UPDATE counters SET value = ? WHERE name = 'last_delivery_at'", (self._clock(),))
            if claim_next and self.unclaimed - unclaimed >= claim_next:
                # A full batch is waiting: claim it in this transaction, one commit (one fsync) instead of two;
                # the next claim() finds it claimed and only reads it.
                preclaimed = new_id()
                claimed = conn.execute(_CLAIM, (preclaimed, claim_next)).rowcount
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self.depth -= n
        self.bytes -= size
        self.unclaimed -= unclaimed + claimed
        if claimed:
            self._preclaimed = preclaimed
        self.writable = True
        return int(n)

    def _do_ack(self, batch_id: str) -> int:
        return self._remove("batch_id = ?", (batch_id,), "forwarded", claim_next=self._claim_size)

    def _do_dead_letter(self, batch_id: str, status: int) -> int:
        copy = (
            "INSERT INTO dead_letters (seq, event_id, json, batch_id, status, enqueued_at, dead_at, topic) "
            "SELECT seq, event_id, json, batch_id, ?, enqueued_at, ?, topic FROM events WHERE batch_id = ?"
        )
        return self._remove("batch_id = ?", (batch_id,), "dead_lettered", copy, (status, self._clock(), batch_id))

    def _do_split(self, batch_id: str) -> None:
        conn = self._db()
        seqs = [seq for (seq,) in conn.execute("SELECT seq FROM events WHERE batch_id = ? ORDER BY seq", (batch_id,))]
        half = (len(seqs) + 1) // 2
        conn.execute("BEGIN IMMEDIATE")
        try:
            for part in (seqs[:half], seqs[half:]):
                if part:
                    conn.execute(
                        "UPDATE events SET batch_id = ? WHERE batch_id = ? AND seq BETWEEN ? AND ?",
                        (new_id(), batch_id, part[0], part[-1]),
                    )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _do_expire(self) -> int:
        return self._remove("enqueued_at < ?", (self._clock() - self._max_age_s,), "expired")

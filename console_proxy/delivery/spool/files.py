"""The spool's file as its thread uses it: the lock, the writer and reader connections, and what a storage fault
leads to: one log line and a refusal (503), never a signal death (docs/delivery.md, "Storage faults")."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from pathlib import Path

from console_proxy.core.errors import SinkRefused
from console_proxy.core.metrics import QueueStats
from console_proxy.delivery.queue import QUEUE_RETRY_AFTER_S
from console_proxy.delivery.spool.db import connect, lock_spool, open_spool, read_stats
from console_proxy.delivery.spool.held import no_room
from console_proxy.delivery.spool.side_files import Fault, SideFiles

logger = logging.getLogger("console_proxy")


def unwritable() -> SinkRefused:
    return SinkRefused("spool is unwritable", label="spool_unwritable", retry_after=QUEUE_RETRY_AFTER_S)


def gone() -> SinkRefused:
    return SinkRefused("spool is missing", label="spool_missing", retry_after=QUEUE_RETRY_AFTER_S)


class SpoolFile:
    """One spool file. Everything but `read_stats`, `intact` and `fit_for` runs on the spool's thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._reader_lock = threading.Lock()
        self._lock_fd: int | None = None
        # (st_dev, st_ino) of the file opened; None before the first open. Puts check that the path still names it.
        self._file_id: tuple[int, int] | None = None
        self._side = SideFiles(path)
        # -shm shrank under SQLite's mapping: nothing may touch the file again in this process (SIGBUS).
        self.poisoned = False
        self.writable = False
        # Why the last write failed: "room" (the disk is full), "access" (a file cannot be written), "other"; None
        # when it succeeded. Readiness looks at the cause again rather than trusting a stale failure.
        self.failure: str | None = None
        self._reported: set[str] = set()

    # ---- from any thread -------------------------------------------------------------------------------------

    def current_file_id(self) -> tuple[int, int] | None:
        try:
            named = os.stat(self.path)
        except FileNotFoundError:
            return None
        return named.st_dev, named.st_ino

    def intact(self) -> bool:
        """The path still names the file that was opened."""
        return self._file_id is None or self.current_file_id() == self._file_id

    def read_stats(self) -> QueueStats:
        """A reading of the file through a read-only connection of its own (sqlite3.Error when there is none)."""
        found = self._side.check()
        if self.poisoned or (found is not None and found[0] is Fault.SHRUNK):
            raise sqlite3.OperationalError("the spool's -shm file shrank; not read until a restart")
        with self._reader_lock:
            if self._reader is None:
                self._reader = connect(self.path, readonly=True)
            return read_stats(self._reader)

    def fit_for(self, size: int) -> bool:
        """The file, its side files and its directory writable, open (or closed for lack of room or access, which are
        looked at here), and room on the disk for `size` bytes written twice (the WAL's frames, then the
        checkpoint's pages). A failed write is not remembered: its cause is looked at again."""
        if self.poisoned or not self.intact() or self._side.check() is not None:
            return False
        if self.conn is None and self.failure not in ("room", "access"):
            return False  # not open, and not for a cause looked at here (another process holds it, say)
        if not os.access(self.path.parent, os.W_OK):
            return False  # (the database file itself is only written by checkpoints: a batch goes to the WAL)
        try:
            disk = os.statvfs(self.path.parent)
        except OSError:
            return False
        return disk.f_bavail * disk.f_frsize >= 2 * size

    # ---- on the spool thread ---------------------------------------------------------------------------------

    def db(self) -> sqlite3.Connection:
        if self.conn is None:
            self.open()
        assert self.conn is not None
        return self.conn

    def open(self) -> sqlite3.Connection:
        """Lock and open (or create, or replace a corrupt) file; SinkRefused, logged, when it cannot be."""
        if self._file_id is not None and not self.path.exists():
            self.writable = False
            raise gone()  # was open, then deleted: never quietly start an empty spool in its place
        bad = self._side.unwritable_before_open()
        if bad is not None:
            self.writable, self.failure = False, "access"
            self.report(f"unwritable{bad}", "spool %s cannot be opened: its %s file cannot be written", bad)
            raise unwritable()
        try:
            if self._lock_fd is None:
                self._lock_fd = lock_spool(self.path)
            self.conn = open_spool(self.path)
            self._file_id = self.current_file_id()
        except (sqlite3.Error, OSError) as exc:
            self.writable, self.failure = False, "room" if no_room(exc) else "other"
            logger.error("spool %s cannot be opened: %s", self.path, exc)
            raise unwritable() from exc
        self._side.opened()
        self.drop_reader()
        return self.conn

    def guard(self) -> None:
        """Before SQLite is used: raise SinkRefused (503, one line) instead of letting it touch a side file that
        could kill the process; reopen when a side file was deleted or replaced."""
        if self.poisoned:
            raise unwritable()
        if self.conn is None:
            return
        found = self._side.check()
        if found is None:
            return
        fault, suffix = found
        self.writable = False
        if fault is Fault.SHRUNK:
            # Give the mapping its pages back (zeros: SQLite rebuilds its index from the WAL), then open anew.
            try:
                os.truncate(self._side.side(suffix), self._side.size_seen(suffix))
            except OSError:
                self.poisoned, self.failure = True, "other"
                logger.error(
                    "spool %s: its %s file shrank while open, and SQLite maps it; the spool is not touched again "
                    "until a restart: batches get 503 and nothing is forwarded",
                    self.path,
                    suffix,
                )
                raise unwritable() from None
            logger.error("spool %s: its %s file shrank while open; its size restored, opened again", self.path, suffix)
            self._checkpoint_and_close()
            self.open()
            return
        if fault is Fault.UNWRITABLE:
            self.failure = "access"
            self.report(
                f"unwritable{suffix}",
                "spool %s: its %s file cannot be written (immutable, read-only or its mode); batches get 503 "
                "until it can",
                suffix,
            )
            raise unwritable()
        # Deleted or replaced: what SQLite wrote is in the file it still holds open. Move it into the database,
        # then start side files anew at the path.
        logger.error("spool %s: its %s file was deleted or replaced while open; opened again", self.path, suffix)
        self._checkpoint_and_close()
        self.open()

    def seen(self) -> None:
        """After SQLite was used: the side files as they are now."""
        self._side.seen()

    def check_file(self) -> None:
        """Before a put: the path must still name the file this spool wrote, or nothing is acknowledged.

        A deleted spool is not re-created behind the operator's back (503 until it is back, or a restart); a
        replaced one is opened in its place."""
        if self.conn is None or self._file_id is None or self.current_file_id() == self._file_id:
            return
        logger.error("spool %s was deleted or replaced while open; batches are refused until it is back", self.path)
        # SQLite does not delete the -wal of a file renamed while open, and would replay its frames into whatever
        # file is opened at the path next. Checkpoint them into the file they belong to (its inode is still open)
        # and leave an empty -wal behind.
        self._checkpoint_and_close()
        self.writable = False
        raise gone()

    def failed(self, exc: BaseException, key: str) -> SinkRefused:
        """A write failed: note why, say so once (until it succeeds again), and the refusal to answer."""
        self.writable = False
        self.failure = "room" if no_room(exc) else "other"
        self.report(f"{key}-{self.failure}", "spool %s is unwritable: %s", exc)
        return unwritable()

    def report(self, key: str, message: str, *args: object) -> None:
        """Log `message` (with the path first) once until the fault it tells of is gone (`cleared`)."""
        if key not in self._reported:
            self._reported.add(key)
            logger.error(message, self.path, *args)

    def cleared(self) -> None:
        """A write succeeded."""
        if self._reported:
            logger.warning("spool %s can be written again", self.path)
            self._reported.clear()
        self.failure = None
        self.writable = True

    def drop_reader(self) -> None:
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    def close(self) -> None:
        if self.poisoned:
            # Closing would checkpoint through the shrunk mapping: leave the connections to the process's end.
            self.conn = self._reader = None
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        self.drop_reader()

    def _checkpoint_and_close(self) -> None:
        assert self.conn is not None
        self.drop_reader()
        with contextlib.suppress(sqlite3.Error):
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.conn.close()
        self.conn = None

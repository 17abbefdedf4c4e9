"""Local mode: accepted batches appended to a JSON-lines file, so a person can see what would be sent."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from console_proxy.core.errors import ConsoleProxyError, SinkRefused
from console_proxy.core.events import OutboundEvent, encode_batch, new_id
from console_proxy.delivery.sink import READY_MAX_BYTES, READY_MAX_EVENTS, BatchSizes

LOCAL_EVENTS_FILE = "events.jsonl"
# A full file is not emptied by anyone but the operator: ask the browser to come back much later.
LOCAL_FILE_FULL_RETRY_AFTER_S = 60
# How much of the file's end is read on open to find a torn last line.
TAIL_SCAN_BYTES = 1024 * 1024

logger = logging.getLogger("console_proxy")


class WriterBusyError(ConsoleProxyError):
    """Another process writes this events file; the message is one sentence naming the file and the process."""


def lock_writer(path: Path) -> int:
    """Lock `path` for this process's writes (until the returned descriptor is closed): `<path>.lock`, holding the
    writer's pid. WriterBusyError when another process holds it: two writers would interleave their lines and each
    check the size limit against a file the other grows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise WriterBusyError(
            f"another console-proxy (pid {holder}) is writing {path}; stop it, or give this one another --state-dir."
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


class _Syncer:
    """One thread that runs the sink's fsyncs (and its rare slow writes), one at a time, each resolving its future
    on its loop with one call back: cheaper per group than a thread pool's hand-off."""

    def __init__(self, name: str) -> None:
        self._work: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._name = name

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def submit(
        self, loop: asyncio.AbstractEventLoop, done: asyncio.Future[None], work: Callable[..., None], *args: Any
    ) -> None:
        self.start()
        self._work.put((loop, done, work, args))

    def _run(self) -> None:
        while (item := self._work.get()) is not None:
            loop, done, work, args = item
            try:
                work(*args)
            except BaseException as exc:  # handed to the waiting put, which answers for it
                outcome: BaseException | None = exc
            else:
                outcome = None
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits any more
                loop.call_soon_threadsafe(_resolve, done, outcome)

    def stop(self) -> None:
        if self._thread is not None:
            self._work.put(None)
            self._thread.join()
            self._thread = None


def _resolve(done: asyncio.Future[None], outcome: BaseException | None) -> None:
    if done.done():
        return
    if outcome is None:
        done.set_result(None)
    else:
        done.set_exception(outcome)


def _unwritable() -> SinkRefused:
    return SinkRefused("the local event file is not writable", label="local_file_unwritable")


class LocalFileSink:
    """A `Sink` that appends each batch as one line, its upstream envelope (`events.encode_envelope`), and fsyncs it.

    Puts that arrive during an fsync share the next write and fsync (group commit): the group's lines are
    appended on the loop (page-cache writes; the file is opened O_APPEND), and the sink's one thread fsyncs
    them and resolves the group; `put` returns only once its line is on disk. A write that would take
    the file past `max_bytes` is refused with 503 (nothing is ever removed from the file to make room).

    Accepted means kept: a torn last line left by a crash is cut off on open (into `<name>.torn-<time>`, logged),
    and before each write the file the path names now is compared with the open one, so a file that was deleted,
    moved or rotated is noticed and a new one started before anything is acknowledged.
    """

    def __init__(self, path: Path, *, max_bytes: int | None = None) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._sizes = BatchSizes(READY_MAX_EVENTS, max_bytes if max_bytes is not None else READY_MAX_BYTES)
        # A write failed and was logged: the next failures are not, until a write succeeds.
        self._failing = False
        self._fd: int | None = None
        self._writer_lock: int | None = None
        self._full = False
        self._lock = threading.Lock()
        self._pending: list[tuple[bytes, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._syncer = _Syncer(f"console-proxy fsync {path.name}")

    async def start(self) -> None:
        await asyncio.to_thread(self._open)
        self._syncer.start()

    def _open(self) -> None:
        with self._lock:
            if self._writer_lock is None:
                self._writer_lock = lock_writer(self.path)
            if self._fd is None:
                self._fd = self._open_path()

    def _open_path(self) -> int:
        """Open the path for appending (creating it), after cutting a torn last line off; with `_lock` held."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            self._cut_torn_line(fd)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _cut_torn_line(self, fd: int) -> None:
        # Every write ends with a newline, so bytes after the last one are a write cut short by a crash: a batch
        # never acknowledged. Left there, the next line would be glued to them and could no longer be read.
        size = os.fstat(fd).st_size
        if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
            return
        start = max(0, size - TAIL_SCAN_BYTES)
        tail = os.pread(fd, size - start, start)
        cut = start + tail.rfind(b"\n") + 1 if b"\n" in tail else start
        torn = os.pread(fd, size - cut, cut)
        aside = self.path.with_name(f"{self.path.name}.torn-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
        with open(aside, "ab") as out:
            out.write(torn)
            out.flush()
            os.fsync(out.fileno())
        os.ftruncate(fd, cut)
        os.fsync(fd)
        logger.warning(
            "%s ended in a torn line (a write cut short, never acknowledged); moved its %d bytes to %s",
            self.path,
            len(torn),
            aside,
        )

    def _current_fd(self) -> int:
        """The descriptor of the file the path names now; a new file when it was deleted, moved or replaced."""
        if self._fd is None:
            raise SinkRefused("the local event file is closed", label="local_file_closed")
        if self._is_current(self._fd):
            return self._fd
        logger.warning("%s was moved or deleted; starting a new file there", self.path)
        os.close(self._fd)
        self._fd = None
        self._fd = self._open_path()
        return self._fd

    def _is_current(self, fd: int) -> bool:
        try:
            named = os.stat(self.path)
        except FileNotFoundError:
            return False
        held = os.fstat(fd)
        return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)

    async def put(self, topic: str, events: Sequence[OutboundEvent]) -> None:
        line = encode_batch(topic, new_id(), events)
        self._sizes.saw(len(events), len(line) + 1)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((line + b"\n", done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        await done

    async def _drain(self) -> None:
        # Group commit: the puts that arrived while the previous fsync ran share the next write and fsync. The
        # lines are written here, on the loop (one append, O_APPEND), when the file the path names is the one
        # open; the fsync and the check that the file was not deleted meanwhile run in the sink's one thread,
        # which resolves the whole group with one call back. Anything else (a file to start again, after a move
        # or a delete) is done in that thread too, the slow way.
        loop = asyncio.get_running_loop()
        while self._pending:
            group, self._pending = self._pending, []
            lines = b"".join(line for line, _ in group)
            try:
                written = self._write_here(lines)
                finished: asyncio.Future[None] = loop.create_future()
                if written is None:
                    self._syncer.submit(loop, finished, self._append, lines)
                else:
                    self._syncer.submit(loop, finished, self._sync, written, lines)
                await finished
            except Exception as exc:
                refusal = exc if isinstance(exc, SinkRefused) else _unwritable()
                for _, done in group:
                    if not done.done():
                        done.set_exception(refusal.copy())
            else:
                for _, done in group:
                    if not done.done():
                        done.set_result(None)

    def _write_here(self, lines: bytes) -> tuple[int, int] | None:
        """Append `lines` to the open file when the path still names it: (its descriptor, the size before). None:
        the file must be looked at again (moved, deleted, or a stat that failed), in the thread."""
        with self._lock:
            fd = self._fd
            if fd is None:
                raise SinkRefused("the local event file is closed", label="local_file_closed")
            try:
                if not self._is_current(fd):
                    return None
                size = os.fstat(fd).st_size
            except OSError:
                return None
            self._check_room(size, len(lines))
            try:
                view = memoryview(lines)
                while view:
                    view = view[os.write(fd, view) :]
            except OSError as exc:
                self._failed("cannot write the local event file: %s", exc)
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)
                raise _unwritable() from None
            return fd, size

    def _sync(self, written: tuple[int, int], lines: bytes) -> None:
        """In the thread: fsync what `_write_here` appended; lines written to a file deleted since are written
        again to a new one, as `_append` does."""
        fd, start = written
        with self._lock:
            self._land(fd, start, lines, os.fsync)

    def _check_room(self, size: int, adding: int) -> None:
        if self.max_bytes is not None and size + adding > self.max_bytes:
            if not self._full:
                self._full = True
                logger.warning(
                    "%s is full (%d bytes, --spool-max-bytes %d): new batches get 503 until it is moved away",
                    self.path,
                    size,
                    self.max_bytes,
                )
            raise SinkRefused(
                "the local event file is full", label="local_file_full", retry_after=LOCAL_FILE_FULL_RETRY_AFTER_S
            )
        if self._full:
            self._full = False
            logger.info("%s takes batches again", self.path)

    def _recovered(self) -> None:
        if self._failing:
            self._failing = False
            logger.warning("%s can be written again", self.path)

    def _append(self, lines: bytes) -> None:
        with self._lock:
            try:
                fd = self._current_fd()
            except OSError as exc:
                self._failed("cannot open the local event file: %s", exc)
                raise _unwritable() from None
            size = os.fstat(fd).st_size
            self._check_room(size, len(lines))
            self._land(fd, size, lines, lambda fd: self._write(fd, lines))

    def _land(self, fd: int, start: int, lines: bytes, step: Callable[[int], None]) -> None:
        """Under the lock: `step(fd)` makes `lines`, at `start` in `fd`, durable (writes and fsyncs them, or fsyncs
        what was written). Lines that went to a file deleted between the check and the step went nowhere: they are
        written again to a new one. On a failure, what was written is cut back, so that refused lines do not stay
        half-written in front of the next ones."""
        target = fd
        try:
            step(fd)
            if os.fstat(fd).st_nlink == 0:
                target = self._current_fd()
                start = os.fstat(target).st_size
                self._write(target, lines)
        except OSError as exc:
            self._failed("cannot write the local event file: %s", exc)
            with contextlib.suppress(OSError):
                os.ftruncate(target, start)
            raise _unwritable() from None
        self._recovered()

    def _failed(self, message: str, exc: OSError) -> None:
        # One line per outage, not one per refused batch.
        if not self._failing:
            self._failing = True
            logger.error(message + "; batches get 503 until it can", exc.strerror)

    @staticmethod
    def _write(fd: int, lines: bytes) -> None:
        view = memoryview(lines)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)

    def ready(self) -> bool:
        """Whether a batch like the largest this sink was sent would be written now: the file open, the file at the
        path (or, when it was moved away, its directory) writable by this process, its bytes and that batch within
        `max_bytes`, and room for it on the disk. A failed write is not remembered: its cause is looked at again."""
        if self._fd is None:
            return False
        size = self._sizes.needed()[1]
        try:
            held = os.stat(self.path).st_size
            writable = os.access(self.path, os.W_OK)
        except FileNotFoundError:
            held = 0  # moved away: the next write starts a new file
            writable = os.access(self.path.parent, os.W_OK)
        except OSError:
            return False
        if not writable or (self.max_bytes is not None and held + size > self.max_bytes):
            return False
        try:
            disk = os.statvfs(self.path.parent)
        except OSError:
            return False
        return disk.f_bavail * disk.f_frsize >= size

    async def aclose(self, *, drain: bool = True) -> None:
        """Finish the writes in progress (their callers are waiting for them) and close the file; `drain` has
        nothing more to send here."""
        if self._writer is not None:
            await asyncio.shield(self._writer)
        await asyncio.to_thread(self._close)
        await asyncio.to_thread(self._syncer.stop)

    def _close(self) -> None:
        with self._lock:
            if self._fd is not None:
                fd, self._fd = self._fd, None
                os.close(fd)
            if self._writer_lock is not None:
                lock, self._writer_lock = self._writer_lock, None
                os.close(lock)

"""Local mode: accepted batches appended to a JSON-lines file, so a person can see what would be sent."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path

from console_proxy.delivery.sink import OutboundEvent, SinkRefused
from console_proxy.metrics import Metrics

LOCAL_EVENTS_FILE = "events.jsonl"
# A full file is not emptied by anyone but the operator: ask the browser to come back much later.
FULL_RETRY_AFTER_S = 60

logger = logging.getLogger("console_proxy")


def _unwritable() -> SinkRefused:
    return SinkRefused("the local event file is not writable", label="local_file_unwritable")


class LocalFileSink:
    """A `Sink` that appends each batch as one line `{"topic", "batch_id", "data": [events]}` and fsyncs it.

    Writes run in a worker thread so the event loop is never blocked; puts that arrive during a write share
    the next write and fsync (group commit); `put` returns only once its line is on disk. A write that would take
    the file past `max_bytes` is refused with 503 (nothing is ever removed from the file to make room).
    """

    def __init__(self, path: Path, *, max_bytes: int | None = None, metrics: Metrics | None = None) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.metrics = metrics
        self._fd: int | None = None
        self._lock = threading.Lock()
        self._pending: list[tuple[bytes, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await asyncio.to_thread(self._open)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    async def put(self, events: Sequence[OutboundEvent]) -> None:
        line = json.dumps(
            {"topic": "console", "batch_id": str(uuid.uuid4()), "data": list(events)},
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode("utf-8")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((line + b"\n", done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        try:
            await done
        except SinkRefused as exc:
            if self.metrics is not None:
                self.metrics.rejected(exc.label)
            raise

    async def _drain(self) -> None:
        # Group commit: the puts that arrived while the previous fsync ran share the next one.
        while self._pending:
            group, self._pending = self._pending, []
            try:
                await asyncio.to_thread(self._append, b"".join(line for line, _ in group))
            except Exception as exc:
                refusal = exc if isinstance(exc, SinkRefused) else _unwritable()
                for _, done in group:
                    if not done.done():
                        done.set_exception(refusal.copy())
            else:
                for _, done in group:
                    if not done.done():
                        done.set_result(None)

    def _append(self, lines: bytes) -> None:
        with self._lock:
            if self._fd is None:
                raise SinkRefused("the local event file is closed", label="local_file_closed")
            size = os.fstat(self._fd).st_size
            if self.max_bytes is not None and size + len(lines) > self.max_bytes:
                raise SinkRefused(
                    "the local event file is full", label="local_file_full", retry_after=FULL_RETRY_AFTER_S
                )
            try:
                view = memoryview(lines)
                while view:
                    view = view[os.write(self._fd, view) :]
                os.fsync(self._fd)
            except OSError as exc:
                logger.error("cannot write the local event file: %s", exc.strerror)
                # Refused lines must not stay half-written in front of the next ones.
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, size)
                raise _unwritable() from None

    def ready(self) -> bool:
        return self._fd is not None

    async def aclose(self) -> None:
        if self._writer is not None:
            await asyncio.shield(self._writer)
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self._lock:
            if self._fd is not None:
                fd, self._fd = self._fd, None
                os.close(fd)

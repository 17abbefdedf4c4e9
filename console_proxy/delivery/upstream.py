"""The Sinks of upstream mode: accepted batches go to a durable queue (the SQLite spool here, a Redis stream in
`redis/sink.py`) before the answer, and a forwarder task sends them on."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import httpx

from console_proxy.core.errors import SinkRefused
from console_proxy.core.events import OutboundEvent
from console_proxy.core.metrics import Metrics
from console_proxy.core.settings import Settings
from console_proxy.delivery.forwarder import Forwarder, Jitter, Sleep
from console_proxy.delivery.queue import QUEUE_RETRY_AFTER_S
from console_proxy.delivery.spool.spool import Spool

logger = logging.getLogger("console_proxy")

# /readyz wants room for one more batch of the largest kind a browser sends.
READY_ROOM_EVENTS = 100
READY_ROOM_BYTES = 64 * 1024


class DurableQueue(Protocol):
    """What a ForwardingSink needs of its queue beyond what the forwarder needs (`Queue`)."""

    depth: int
    writable: bool

    async def open(self) -> None: ...

    async def put(self, topic: str, events: Sequence[OutboundEvent]) -> None: ...

    def has_room(self, events: int, size: int) -> bool: ...

    async def close(self) -> None: ...

    def stats(self) -> Any: ...


class ForwardingSink:
    """Keeps each batch in a durable queue before `put` returns; a forwarder task delivers the queue upstream.

    The shared half of SpoolSink and RedisSink: the order of start and shutdown, the refusals while not started
    or closing, readiness as room for one more full batch, and the drain within `shutdown_grace_s`.
    """

    # Where the events are kept, for the log line when the shutdown grace runs out.
    kept_where = "in the queue"

    def __init__(
        self,
        settings: Settings,
        queue: Any,
        *,
        metrics: Metrics | None,
        transport: httpx.AsyncBaseTransport | None,
        clock: Callable[[], float],
        sleep: Sleep,
        jitter: Jitter | None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics if metrics is not None else Metrics()
        self._queue: DurableQueue = queue
        extra = {} if jitter is None else {"jitter": jitter}
        self.forwarder = Forwarder(
            queue, settings, metrics=self.metrics, transport=transport, clock=clock, sleep=sleep, **extra
        )
        self._closing = False
        self._started = False

    async def _open(self) -> None:
        await self._queue.open()
        self.metrics.attach_spool(self._queue.stats)

    def _sound(self) -> bool:
        """Whether the queue's storage is still the one opened (only a file can be moved away)."""
        return True

    async def _started_hook(self) -> None:
        """Background work of the queue's own, after the forwarder started."""

    async def _closing_hook(self) -> None:
        """Stop the queue's own background work, before the drain."""

    def _detach(self) -> None:
        """Detach what `_open` attached to the metrics beyond the queue's stats."""

    async def start(self) -> None:
        await self._open()
        await self.forwarder.start()
        self._started = True
        await self._started_hook()

    async def put(self, topic: str, events: Sequence[OutboundEvent]) -> None:
        if self._closing:
            raise SinkRefused("shutting down", label="shutting_down", retry_after=QUEUE_RETRY_AFTER_S)
        if not self._started:
            raise SinkRefused("not started", label="not_started", retry_after=QUEUE_RETRY_AFTER_S)
        await self._queue.put(topic, events)
        self.forwarder.wake()

    def ready(self) -> bool:
        """Started, writable, sound, and room for a full batch (a full queue answers 503)."""
        if not (self._started and not self._closing and self._queue.writable and self._sound()):
            return False
        settings = self.settings
        return self._queue.has_room(
            min(READY_ROOM_EVENTS, settings.spool_max_events), min(READY_ROOM_BYTES, settings.spool_max_bytes)
        )

    async def aclose(self) -> None:
        """Refuse new batches, send for up to `shutdown_grace_s`; the rest stays queued for later."""
        if self._closing:
            return
        self._closing = True
        await self._closing_hook()
        if self._started:
            try:
                async with asyncio.timeout(self.settings.shutdown_grace_s):
                    await self.forwarder.drain()
            except TimeoutError:
                logger.warning("shutdown grace over; %d events stay %s", self._queue.depth, self.kept_where)
            await self.forwarder.aclose()
        self.metrics.attach_spool(None)
        self._detach()
        await self._queue.close()


class SpoolSink(ForwardingSink):
    """Commits each batch to the spool at `path` before `put` returns; a forwarder task delivers them upstream."""

    kept_where = "spooled for the next start"

    def __init__(
        self,
        settings: Settings,
        path: Path,
        *,
        metrics: Metrics | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
        jitter: Jitter | None = None,
    ) -> None:
        self.spool = Spool(
            path,
            max_events=settings.spool_max_events,
            max_bytes=settings.spool_max_bytes,
            max_age_s=settings.spool_max_age_s,
            clock=clock,
        )
        super().__init__(
            settings, self.spool, metrics=metrics, transport=transport, clock=clock, sleep=sleep, jitter=jitter
        )

    async def _open(self) -> None:
        # An unwritable spool is logged by the spool; ready() stays false and every put answers 503 until
        # a write succeeds.
        with contextlib.suppress(SinkRefused):
            await self.spool.open()
        self.metrics.attach_spool(self.spool.stats)

    def _sound(self) -> bool:
        return self.spool.intact()

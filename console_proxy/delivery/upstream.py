"""The Sink of upstream mode: accepted batches go to the durable spool, a forwarder sends them on."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

from console_proxy.delivery.forwarder import Forwarder, Jitter, Sleep
from console_proxy.delivery.spool import SPOOL_RETRY_AFTER_S, Spool
from console_proxy.errors import SinkRefused
from console_proxy.events import OutboundEvent
from console_proxy.metrics import Metrics
from console_proxy.settings import Settings

logger = logging.getLogger("console_proxy")

# /readyz wants room for one more batch of the largest kind a browser sends.
READY_ROOM_EVENTS = 100
READY_ROOM_BYTES = 64 * 1024


class SpoolSink:
    """Commits each batch to the spool at `path` before `put` returns; a forwarder task delivers them upstream."""

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
        self.settings = settings
        self.metrics = metrics if metrics is not None else Metrics()
        self.spool = Spool(
            path,
            max_events=settings.spool_max_events,
            max_bytes=settings.spool_max_bytes,
            max_age_s=settings.spool_max_age_s,
            clock=clock,
        )
        extra = {} if jitter is None else {"jitter": jitter}
        self.forwarder = Forwarder(
            self.spool, settings, metrics=self.metrics, transport=transport, clock=clock, sleep=sleep, **extra
        )
        self._closing = False
        self._started = False

    async def start(self) -> None:
        # An unwritable spool is logged by the spool; ready() stays false and every put answers 503 until
        # a write succeeds.
        with contextlib.suppress(SinkRefused):
            await self.spool.open()
        self.metrics.attach_spool(self.spool.stats)
        await self.forwarder.start()
        self._started = True

    async def put(self, topic: str, events: Sequence[OutboundEvent]) -> None:
        if self._closing:
            raise SinkRefused("shutting down", label="shutting_down", retry_after=SPOOL_RETRY_AFTER_S)
        if not self._started:
            raise SinkRefused("not started", label="not_started", retry_after=SPOOL_RETRY_AFTER_S)
        await self.spool.put(topic, events)
        self.forwarder.wake()

    def ready(self) -> bool:
        """Started, writable, the file still in place, and room for a full batch (a full spool answers 503)."""
        if not (self._started and not self._closing and self.spool.writable and self.spool.intact()):
            return False
        settings = self.settings
        return self.spool.has_room(
            min(READY_ROOM_EVENTS, settings.spool_max_events), min(READY_ROOM_BYTES, settings.spool_max_bytes)
        )

    async def aclose(self) -> None:
        """Refuse new batches, send what is spooled for up to `shutdown_grace_s`, keep the rest for the next start."""
        if self._closing:
            return
        self._closing = True
        if self._started:
            try:
                async with asyncio.timeout(self.settings.shutdown_grace_s):
                    await self.forwarder.drain()
            except TimeoutError:
                logger.warning("shutdown grace over; %d events stay spooled for the next start", self.spool.depth)
            await self.forwarder.aclose()
        self.metrics.attach_spool(None)
        await self.spool.close()

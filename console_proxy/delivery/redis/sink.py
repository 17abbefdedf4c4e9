"""The Sink of `--queue redis://...`: batches go to a Redis stream shared by every process; each process forwards
as one consumer of the group."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

import httpx

from console_proxy.delivery.forwarder import Forwarder, Jitter, Sleep, stop_task
from console_proxy.delivery.redis.client import REDIS_ERRORS
from console_proxy.delivery.redis.queue import QueueError, RedisQueue
from console_proxy.delivery.spool import SPOOL_RETRY_AFTER_S
from console_proxy.delivery.upstream import READY_ROOM_BYTES, READY_ROOM_EVENTS
from console_proxy.errors import SinkRefused
from console_proxy.events import OutboundEvent
from console_proxy.metrics import Metrics
from console_proxy.settings import Settings

logger = logging.getLogger("console_proxy")

# How often a process looks at the shared queue for work other processes accepted (or left behind), renews
# its claims, and retries a Redis that went away.
POLL_INTERVAL_S = 0.5


class RedisSink:
    """Appends each batch to the Redis stream before `put` returns; a forwarder task delivers the group's batches."""

    def __init__(
        self,
        settings: Settings,
        url: str,
        *,
        metrics: Metrics | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
        jitter: Jitter | None = None,
        poll_interval_s: float = POLL_INTERVAL_S,
    ) -> None:
        self.settings = settings
        self.metrics = metrics if metrics is not None else Metrics()
        self.queue = RedisQueue(
            url,
            max_events=settings.spool_max_events,
            max_bytes=settings.spool_max_bytes,
            max_age_s=settings.spool_max_age_s,
            lease_s=settings.queue_lease_s,
            require_aof=settings.queue_require_aof,
            clock=clock,
        )
        extra = {} if jitter is None else {"jitter": jitter}
        self.forwarder = Forwarder(
            self.queue, settings, metrics=self.metrics, transport=transport, clock=clock, sleep=sleep, **extra
        )
        self._poll_interval_s = poll_interval_s
        self._poller: asyncio.Task[None] | None = None
        self._closing = False
        self._started = False

    async def start(self) -> None:
        """Connect (a Redis that is down only makes the proxy not ready); QueueError when appendonly is required
        and off."""
        await self.queue.open()
        self.metrics.attach_spool(self.queue.stats)
        self.metrics.attach_queue_gauges(self.queue.gauges)
        await self.forwarder.start()
        self._poller = asyncio.create_task(self._poll(), name="console-proxy redis queue")
        self._started = True

    async def put(self, topic: str, events: Sequence[OutboundEvent]) -> None:
        if self._closing:
            raise SinkRefused("shutting down", label="shutting_down", retry_after=SPOOL_RETRY_AFTER_S)
        if not self._started:
            raise SinkRefused("not started", label="not_started", retry_after=SPOOL_RETRY_AFTER_S)
        await self.queue.put(topic, events)
        self.forwarder.wake()

    def ready(self) -> bool:
        """Started, Redis reachable, and room in the group's queue for a full batch (a full queue answers 503)."""
        if not (self._started and not self._closing and self.queue.writable):
            return False
        settings = self.settings
        return self.queue.has_room(
            min(READY_ROOM_EVENTS, settings.spool_max_events), min(READY_ROOM_BYTES, settings.spool_max_bytes)
        )

    async def aclose(self) -> None:
        """Refuse new batches, send for up to `shutdown_grace_s`; what is left stays in Redis for the group."""
        if self._closing:
            return
        self._closing = True
        if self._poller is not None:
            await stop_task(self._poller)
        if self._started:
            try:
                async with asyncio.timeout(self.settings.shutdown_grace_s):
                    await self.forwarder.drain()
            except TimeoutError:
                logger.warning("shutdown grace over; %d events stay in the redis queue", self.queue.depth)
            await self.forwarder.aclose()
        self.metrics.attach_spool(None)
        self.metrics.attach_queue_gauges(None)
        await self.queue.close()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval_s)
            try:
                if await self.queue.poll():
                    self.forwarder.wake()
            except REDIS_ERRORS as exc:
                self.queue.unavailable(exc)
            except QueueError as exc:
                logger.error("%s", exc)
            except Exception as exc:  # a script error must not end the poller
                logger.error("redis queue poll failed: %s: %s", type(exc).__name__, exc)

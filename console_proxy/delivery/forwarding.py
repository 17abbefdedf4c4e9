"""The Sink of upstream mode: each accepted batch goes to a durable queue (the SQLite spool, or a Redis stream)
before `put` returns, and a forwarder task sends the queue on. The queue is a part given in, not a subclass."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

import httpx

from console_proxy.core.errors import SinkRefused
from console_proxy.core.events import OutboundEvent
from console_proxy.core.metrics import Metrics
from console_proxy.core.settings import Settings
from console_proxy.delivery.forwarder import Forwarder, Jitter, Sleep, stop_task
from console_proxy.delivery.queue import QUEUE_RETRY_AFTER_S, ChargingQueue, DurableQueue
from console_proxy.delivery.sink import Charge

logger = logging.getLogger("console_proxy")


class ForwardingSink:
    """Keeps each batch in `queue` before `put` returns; a forwarder task delivers the queue upstream.

    Owns the order of start and shutdown, the refusals while not started or closing, readiness as room for one more
    full batch, the queue's own background work (`queue.watch`), and the drain within `shutdown_grace_s`.
    """

    def __init__(
        self,
        settings: Settings,
        queue: DurableQueue,
        *,
        metrics: Metrics | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
        jitter: Jitter | None = None,
    ) -> None:
        self.settings = settings
        self.queue = queue
        self.metrics = metrics if metrics is not None else Metrics()
        self._sleep = sleep
        self.forwarder = Forwarder(
            queue, settings, metrics=self.metrics, transport=transport, clock=clock, sleep=sleep, jitter=jitter
        )
        self._watcher: asyncio.Task[None] | None = None
        self._closing = False
        self._started = False

    async def start(self) -> None:
        self._closing = False
        # A store that cannot be written now is logged by the queue; ready() stays false and every put answers 503
        # until a write succeeds. Only what must stop the start (a Redis without the required AOF) is raised.
        with contextlib.suppress(SinkRefused):
            await self.queue.open()
        self.metrics.attach_spool(self.queue.stats)
        self.metrics.attach_queue_gauges(self.queue.gauges)
        await self.forwarder.start()
        self._started = True
        self._watcher = asyncio.create_task(
            self.queue.watch(self.forwarder.wake, self._sleep), name="console-proxy queue"
        )

    async def put(self, topic: str, events: Sequence[OutboundEvent]) -> None:
        self._check_open()
        await self.queue.put(topic, events)
        self.forwarder.wake()

    def takes_charges(self, url: str) -> bool:
        """Whether the queue takes a client's budget kept at `url` in its put (the Redis queue at that URL)."""
        return isinstance(self.queue, ChargingQueue) and self.queue.url == url

    async def put_charged(self, topic: str, events: Sequence[OutboundEvent], charge: Charge) -> bool:
        """`put`, with `charge` taken from the client's budget in the same step: False (and nothing kept, nothing
        charged) when the budget is spent. Only when `takes_charges()`."""
        self._check_open()
        assert isinstance(self.queue, ChargingQueue)
        if not await self.queue.put_charged(topic, events, charge):
            return False
        self.forwarder.wake()
        return True

    def _check_open(self) -> None:
        if self._closing:
            raise SinkRefused("shutting down", label="shutting_down", retry_after=QUEUE_RETRY_AFTER_S)
        if not self._started:
            raise SinkRefused("not started", label="not_started", retry_after=QUEUE_RETRY_AFTER_S)

    def ready(self) -> bool:
        """Started, not closing, and the queue would take the next batch now (`DurableQueue.ready`)."""
        return self._started and not self._closing and self.queue.ready()

    async def aclose(self, *, drain: bool = True) -> None:
        """Refuse new batches, send for up to `shutdown_grace_s`; the rest stays queued for later. `drain=False`
        (telemetry turned off) sends nothing more: a batch in flight is cut off and stays queued, unsent."""
        if self._closing:
            return
        self._closing = True
        if self._watcher is not None:
            await stop_task(self._watcher)
            self._watcher = None
        if self._started:
            if drain:
                try:
                    async with asyncio.timeout(self.settings.shutdown_grace_s):
                        await self.forwarder.drain()
                except TimeoutError:
                    logger.warning("shutdown grace over; %d events stay %s", self.queue.depth, self.queue.kept_where)
            await self.forwarder.aclose()
            self._started = False
        self.metrics.attach_spool(None)
        self.metrics.attach_queue_gauges(None)
        await self.queue.close()

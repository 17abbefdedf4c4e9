"""The Sink of `--queue redis://...`: batches go to a Redis stream shared by every process; each process forwards
as one consumer of the group."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import httpx

from console_proxy.core.metrics import Metrics
from console_proxy.core.settings import Settings
from console_proxy.delivery.forwarder import Jitter, Sleep, stop_task
from console_proxy.delivery.redis.client import REDIS_ERRORS
from console_proxy.delivery.redis.queue import QueueError, RedisQueue
from console_proxy.delivery.upstream import ForwardingSink

logger = logging.getLogger("console_proxy")

# How often a process looks at the shared queue for work other processes accepted (or left behind), renews
# its claims, and retries a Redis that went away.
POLL_INTERVAL_S = 0.5


class RedisSink(ForwardingSink):
    """Appends each batch to the Redis stream before `put` returns; a forwarder task delivers the group's batches."""

    kept_where = "in the redis queue"

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
        self.queue = RedisQueue(
            url,
            max_events=settings.spool_max_events,
            max_bytes=settings.spool_max_bytes,
            max_age_s=settings.spool_max_age_s,
            lease_s=settings.queue_lease_s,
            require_aof=settings.queue_require_aof,
            clock=clock,
        )
        super().__init__(
            settings, self.queue, metrics=metrics, transport=transport, clock=clock, sleep=sleep, jitter=jitter
        )
        self._poll_interval_s = poll_interval_s
        self._poller: asyncio.Task[None] | None = None

    async def _open(self) -> None:
        """Connect (a Redis that is down only makes the proxy not ready); QueueError when appendonly is required
        and off."""
        await self.queue.open()
        self.metrics.attach_spool(self.queue.stats)
        self.metrics.attach_queue_gauges(self.queue.gauges)

    async def _started_hook(self) -> None:
        self._poller = asyncio.create_task(self._poll(), name="console-proxy redis queue")

    async def _closing_hook(self) -> None:
        if self._poller is not None:
            await stop_task(self._poller)

    def _detach(self) -> None:
        self.metrics.attach_queue_gauges(None)

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

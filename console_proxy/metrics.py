"""Prometheus metrics of one app, in a registry of its own (never the process-global one)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from console_proxy.spool import SpoolStats

logger = logging.getLogger("console_proxy")

CONTENT_TYPE = CONTENT_TYPE_LATEST
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The counters the middleware and the forwarder report to, and the `/metrics` text.

    Hooks for ingestion: `received(n)`, `accepted(n)`, `rejected(reason)`, `dropped(reason, n)`.
    With a spool attached, `accepted`, `forwarded`, `dead_lettered`, `expired`, the spool's depth and size
    and the last delivery time are read from the spool file in one transaction at each scrape, so
    `accepted = forwarded + spooled + dead_lettered + expired` holds in every scrape and across restarts
    (they count over the life of the spool file). Without one (local mode), `accepted` counts this process.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._received = Counter("console_proxy_events_received", "Events received from browsers, before any check.",
                                 registry=self.registry)
        self._rejected = Counter("console_proxy_batches_rejected", "Batches refused with a 4xx or 5xx, by reason.",
                                 ["reason"], registry=self.registry)
        self._dropped = Counter("console_proxy_events_dropped", "Events left out of an accepted batch, by reason.",
                                ["reason"], registry=self.registry)
        self._retried = Counter("console_proxy_upstream_retries", "Upstream attempts that will be retried.",
                                registry=self.registry)
        self._latency = Histogram("console_proxy_upstream_latency_seconds", "Time until the collector answered.",
                                  ["status"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self._lock = threading.Lock()
        self._accepted_here = 0
        self._stats: Callable[[], SpoolStats] | None = None
        self.registry.register(_DeliveryCollector(self))

    # ---- hooks -----------------------------------------------------------------------------------------------

    def received(self, n: int) -> None:
        self._received.inc(n)

    def accepted(self, n: int) -> None:
        with self._lock:
            self._accepted_here += n

    def rejected(self, reason: str) -> None:
        self._rejected.labels(reason=reason).inc()

    def dropped(self, reason: str, n: int = 1) -> None:
        self._dropped.labels(reason=reason).inc(n)

    def retried(self) -> None:
        self._retried.inc()

    def observe_upstream(self, seconds: float, status: int) -> None:
        self._latency.labels(status=str(status)).observe(seconds)

    def delivered(self, n: int) -> None:
        """A batch of `n` events got a 2xx (the counts themselves are read from the spool)."""

    def attach_spool(self, stats: Callable[[], SpoolStats] | None) -> None:
        """Read the delivery figures from this callable at each scrape (None detaches)."""
        self._stats = stats

    # ---- exposition ------------------------------------------------------------------------------------------

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))

    async def render_async(self) -> bytes:
        """The Prometheus text, read off the event loop (a scrape reads the spool file)."""
        return await asyncio.to_thread(self.render)

    def _delivery(self) -> tuple[int, SpoolStats | None]:
        with self._lock:
            here = self._accepted_here
        if self._stats is None:
            return here, None
        try:
            return here, self._stats()
        except Exception as exc:  # an unreadable spool must not break the scrape
            logger.error("cannot read the spool for metrics: %s", exc)
            return here, None


class _DeliveryCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def describe(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        return iter(())

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        here, stats = self._metrics._delivery()
        if stats is None:
            yield CounterMetricFamily("console_proxy_events_accepted", "Events accepted (answered 202).", value=here)
            return
        for name, value, text in (
                ("accepted", stats.accepted, "Events accepted (committed to the spool, answered 202)."),
                ("forwarded", stats.forwarded, "Events the collector took (2xx)."),
                ("dead_lettered", stats.dead_lettered, "Events the collector refused for good (4xx), kept aside."),
                ("expired", stats.expired, "Events removed from the spool for being older than the maximum age.")):
            yield CounterMetricFamily(f"console_proxy_events_{name}", text, value=value)
        yield GaugeMetricFamily("console_proxy_spool_events", "Events in the spool now.", value=stats.spooled)
        yield GaugeMetricFamily("console_proxy_spool_bytes", "Bytes of event JSON in the spool now.",
                                value=stats.spooled_bytes)
        yield GaugeMetricFamily("console_proxy_last_delivery_timestamp_seconds",
                                "Unix time of the last 2xx from the collector (0: never).",
                                value=stats.last_delivery_at or 0.0)

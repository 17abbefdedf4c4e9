"""Prometheus metrics of one app, in a registry of its own (never the process-global one)."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import logging
from collections.abc import Callable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger("console_proxy")

CONTENT_TYPE = CONTENT_TYPE_LATEST
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

Family = CounterMetricFamily | GaugeMetricFamily
# The source a count is filed under when the caller names none.
DEFAULT_SOURCE = "console"


@dataclasses.dataclass(frozen=True)
class QueueStats:
    """One consistent reading of a queue (the SQLite spool or the Redis stream): its lifetime counters, depth and
    size now.

    `accepted == forwarded + spooled + dead_lettered + expired` holds in every reading, across restarts,
    because every change of the queue updates the counters in the same transaction (or script).
    """

    accepted: int
    forwarded: int
    dead_lettered: int
    expired: int
    spooled: int
    spooled_bytes: int
    last_delivery_at: float | None


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """The counters of one scrape: by source, and by (source, reason) or outcome."""

    received: dict[str, int]
    accepted: dict[str, int]
    rejected: dict[tuple[str, str], int]
    dropped: dict[tuple[str, str], int]
    fields: dict[tuple[str, str], int]
    reloads: dict[str, int]


# The counters copied on the loop for the scrape in progress. A context variable, not an attribute: each scrape
# runs in its own task and worker thread (to_thread copies the context), so concurrent scrapes cannot read or clear
# each other's copy.
_SCRAPE: contextvars.ContextVar[tuple[Metrics, Snapshot] | None] = contextvars.ContextVar(
    "console_proxy_scrape", default=None
)


class Metrics:
    """What `/metrics` shows. The hot path only bumps plain integers and dicts; a scrape reads them.

    Ingestion reports `received(n, source)`, `accepted(n, source)`, `rejected(reason, source)` (a whole batch
    refused), `dropped(reason, n, source)` and `fields_dropped(reason, n, source)`, all from
    `TelemetryRuntime.ingest`; the rules reloader reports `rules_reloaded(ok)`.
    With a spool attached, `accepted`, `forwarded`, `dead_lettered`, `expired`, the spool's depth and size and
    the last delivery time are read from the spool file in one transaction at each scrape, so
    `accepted = forwarded + spooled + dead_lettered + expired` holds in every scrape and across restarts
    (they count over the life of the spool file). Without one (local mode) `accepted` counts this process.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._retried = Counter(
            "console_proxy_upstream_retries", "Upstream attempts that will be retried.", registry=self.registry
        )
        self._latency = Histogram(
            "console_proxy_upstream_latency_seconds",
            "Time until the collector answered.",
            ["status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._received: dict[str, int] = {}
        self._accepted: dict[str, int] = {}
        self._rejected: dict[tuple[str, str], int] = {}
        self._dropped: dict[tuple[str, str], int] = {}
        self._fields_dropped: dict[tuple[str, str], int] = {}
        self._reloads = {"ok": 0, "refused": 0}
        self._stats: Callable[[], QueueStats] | None = None
        self._queue_gauges: Callable[[], list[tuple[str, str, float]]] | None = None
        self.registry.register(_Collector(self))

    # ---- hooks (called on the event loop) ---------------------------------------------------------------------

    def received(self, n: int, source: str = DEFAULT_SOURCE) -> None:
        self._received[source] = self._received.get(source, 0) + n

    def accepted(self, n: int, source: str = DEFAULT_SOURCE) -> None:
        self._accepted[source] = self._accepted.get(source, 0) + n

    def rejected(self, reason: str, source: str = DEFAULT_SOURCE) -> None:
        key = (source, reason)
        self._rejected[key] = self._rejected.get(key, 0) + 1

    def dropped(self, reason: str, n: int = 1, source: str = DEFAULT_SOURCE) -> None:
        key = (source, reason)
        self._dropped[key] = self._dropped.get(key, 0) + n

    def fields_dropped(self, reason: str, n: int, source: str) -> None:
        key = (source, reason)
        self._fields_dropped[key] = self._fields_dropped.get(key, 0) + n

    def rules_reloaded(self, ok: bool) -> None:
        self._reloads["ok" if ok else "refused"] += 1

    def retried(self) -> None:
        self._retried.inc()

    def observe_upstream(self, seconds: float, status: int) -> None:
        self._latency.labels(status=str(status)).observe(seconds)

    def attach_spool(self, stats: Callable[[], QueueStats] | None) -> None:
        """Read the delivery figures from this callable at each scrape (None detaches)."""
        self._stats = stats

    def attach_queue_gauges(self, read: Callable[[], list[tuple[str, str, float]]] | None) -> None:
        """Also show these (name, help, value) gauges of a shared queue at each scrape (None detaches)."""
        self._queue_gauges = read

    # ---- exposition ------------------------------------------------------------------------------------------

    async def render_async(self) -> bytes:
        """The Prometheus text. The counters are copied on the loop; the spool is read in a thread."""
        token = _SCRAPE.set((self, self._take_snapshot()))
        try:
            return await asyncio.to_thread(self.render)
        finally:
            _SCRAPE.reset(token)

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))

    def _take_snapshot(self) -> Snapshot:
        return Snapshot(
            dict(self._received),
            dict(self._accepted),
            dict(self._rejected),
            dict(self._dropped),
            dict(self._fields_dropped),
            dict(self._reloads),
        )

    def _families(self) -> Iterator[Family]:
        scrape = _SCRAPE.get()
        snap = scrape[1] if scrape and scrape[0] is self else self._take_snapshot()
        family = CounterMetricFamily(
            "console_proxy_rules_reloads",
            "Rules reloads while serving, by outcome (refused: kept the old rules).",
            labels=["outcome"],
        )
        for outcome, n in sorted(snap.reloads.items()):
            family.add_metric([outcome], n)
        yield family
        family = CounterMetricFamily(
            "console_proxy_events_received", "Events in well-formed batches, by source.", labels=["source"]
        )
        for source, n in sorted(snap.received.items()):
            family.add_metric([source], n)
        yield family
        for name, text, counts in (
            ("batches_rejected", "Batches refused as a whole, by source and reason.", snap.rejected),
            ("events_dropped", "Events left out of accepted batches, by source and reason.", snap.dropped),
            ("fields_dropped", "Fields left out of kept events (server, CLI), by source and reason.", snap.fields),
        ):
            family = CounterMetricFamily(f"console_proxy_{name}", text, labels=["source", "reason"])
            for (source, reason), n in sorted(counts.items()):
                family.add_metric([source, reason], n)
            yield family
        if self._stats is None:
            family = CounterMetricFamily(
                "console_proxy_events_accepted", "Events accepted (answered 202), by source.", labels=["source"]
            )
            for source, n in sorted(snap.accepted.items()):
                family.add_metric([source], n)
            yield family
            return
        stats = self._read_stats()
        if stats is None:
            return
        for name, value, text in (
            ("accepted", stats.accepted, "Events accepted (committed to the spool, answered 202)."),
            ("forwarded", stats.forwarded, "Events the collector took (2xx)."),
            ("dead_lettered", stats.dead_lettered, "Events the collector refused for good (4xx), kept aside."),
            ("expired", stats.expired, "Events removed from the spool for being older than the maximum age."),
        ):
            yield CounterMetricFamily(f"console_proxy_events_{name}", text, value=value)
        yield GaugeMetricFamily("console_proxy_spool_events", "Events in the spool now.", value=stats.spooled)
        yield GaugeMetricFamily(
            "console_proxy_spool_bytes", "Bytes of event JSON in the spool now.", value=stats.spooled_bytes
        )
        yield GaugeMetricFamily(
            "console_proxy_last_delivery_timestamp_seconds",
            "Unix time of the last 2xx from the collector (0: never).",
            value=stats.last_delivery_at or 0.0,
        )
        yield from self._read_queue_gauges()

    def _read_queue_gauges(self) -> Iterator[Family]:
        if self._queue_gauges is None:
            return
        try:
            gauges = self._queue_gauges()
        except Exception as exc:  # an unreachable queue must not break the scrape
            logger.error("cannot read the queue for metrics: %s", exc)
            return
        for name, text, value in gauges:
            yield GaugeMetricFamily(name, text, value=value)

    def _read_stats(self) -> QueueStats | None:
        assert self._stats is not None
        try:
            return self._stats()
        except Exception as exc:  # an unreadable spool must not break the scrape
            logger.error("cannot read the spool for metrics: %s", exc)
            return None


class _Collector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def describe(self) -> Iterator[Family]:
        return iter(())

    def collect(self) -> Iterator[Family]:
        return self._metrics._families()

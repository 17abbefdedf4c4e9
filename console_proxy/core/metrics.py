"""Prometheus metrics of one app, in a registry of its own (never the process-global one).

With several worker processes (`serve --workers N`) every worker's counters are kept in prometheus-client's
multiprocess files (`PROMETHEUS_MULTIPROC_DIR`, a directory per run), so whichever worker answers a scrape shows
the sum over all of them (docs/metrics.md).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import platform
import time
from collections.abc import Callable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from console_proxy._version import __version__
from console_proxy.core.accounting import FATES, TopicAccount

logger = logging.getLogger("console_proxy")

CONTENT_TYPE = CONTENT_TYPE_LATEST
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# prometheus-client's own variable: when set (before it is imported), its values live in files in that directory.
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
# A refusal of one kind is logged at most this often, with the count of those since the last line.
REFUSAL_LOG_EVERY_S = 60.0

Family = CounterMetricFamily | GaugeMetricFamily
# The source a count is filed under when the caller names none.
DEFAULT_SOURCE = "console"


@dataclasses.dataclass(frozen=True)
class QueueStats:
    """One consistent reading of a queue (the SQLite spool or the Redis stream): its lifetime counters, depth and
    size now.

    `accepted == forwarded + spooled + dead_lettered + expired + lost` holds in every reading, across restarts,
    because every change of the queue updates the counters in the same transaction (or script); `lost` is what a
    Redis without persistence dropped on a restart, as the gate's own last reading had it.
    """

    accepted: int
    forwarded: int
    dead_lettered: int
    expired: int
    spooled: int
    spooled_bytes: int
    last_delivery_at: float | None
    # Accepted, then gone with a Redis that kept nothing (a restart without persistence): never silently.
    lost: int = 0
    # Per topic, what became of the accepted events by the collector's answers (docs/design.md, "End-to-end
    # accounting"); None for a store that keeps none (a spool file read before its first start with accounting).
    topics: tuple[TopicAccount, ...] | None = None


class Metrics:
    """What `/metrics` shows.

    Ingestion reports `received(n, source)`, `accepted(n, source)`, `rejected(reason, source)` (a whole batch
    refused), `dropped(reason, n, source)` and `fields_dropped(reason, n, source)`, all from
    `TelemetryRuntime.ingest`; the rules reloader reports `rules_reloaded(ok)`, the app `request(path, status)`.
    With a queue attached, `accepted`, `forwarded`, `dead_lettered`, `expired`, the queue's depth and size and
    the last delivery time are read from the queue at each scrape, so
    `accepted = forwarded + spooled + dead_lettered + expired` holds in every scrape and across restarts
    (they count over the life of the queue). Without one (local mode) `accepted` counts this server.

    `multiprocess_dir` (default: `$PROMETHEUS_MULTIPROC_DIR`): the counters of every process writing there are
    summed at each scrape; the process collector is then left out, as it could only show the answering worker.
    """

    def __init__(self, *, multiprocess_dir: str | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        if multiprocess_dir is None:
            multiprocess_dir = os.environ.get(MULTIPROCESS_ENV) or None
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry(auto_describe=True)
        # Under multiprocess mode the counters are read back from the files, not from this registry.
        own = None if multiprocess_dir else self.registry
        self._received = Counter(
            "console_proxy_events_received", "Events in well-formed batches, by source.", ["source"], registry=own
        )
        self._rejected = Counter(
            "console_proxy_batches_rejected",
            "Batches refused as a whole, by source and reason.",
            ["source", "reason"],
            registry=own,
        )
        self._dropped = Counter(
            "console_proxy_events_dropped",
            "Events left out of accepted batches, by source and reason.",
            ["source", "reason"],
            registry=own,
        )
        self._fields_dropped = Counter(
            "console_proxy_fields_dropped",
            "Fields left out of kept events (server, CLI), by source and reason.",
            ["source", "reason"],
            registry=own,
        )
        self._unknown_actions = Counter(
            "console_proxy_actions_unknown",
            "Events sent with the unknown action token (a name on no allow entry), by source.",
            ["source"],
            registry=own,
        )
        self._learned = Counter(
            "console_proxy_unknowns_learned",
            "Raw routes and action names written to the local suggestions file (--learn-unknown), by kind.",
            ["kind"],
            registry=own,
        )
        self._reloads = Counter(
            "console_proxy_rules_reloads",
            "Rules reloads while serving, by outcome (refused: kept the old rules).",
            ["outcome"],
            registry=own,
        )
        for outcome in ("ok", "refused"):
            self._reloads.labels(outcome)
        self._retried = Counter(
            "console_proxy_upstream_retries", "Upstream attempts that will be retried.", registry=own
        )
        self._latency = Histogram(
            "console_proxy_upstream_latency_seconds",
            "Time until the collector answered.",
            ["status"],
            buckets=LATENCY_BUCKETS,
            registry=own,
        )
        self._requests = Counter(
            "console_proxy_http_requests",
            "Requests answered by the standalone server, by path class and status (101: a WebSocket accepted).",
            ["path", "status"],
            registry=own,
        )
        # Reverse-proxy mode (docs/design.md, "Reverse-proxy mode"): what was changed, left untouched, or failed.
        self._rewrites = Counter(
            "console_proxy_proxy_rewrites",
            "Console pages given the page script, and scripts whose telemetry URL was replaced, by kind.",
            ["kind"],
            registry=own,
        )
        self._rewrites_skipped = Counter(
            "console_proxy_proxy_rewrites_skipped",
            "Pages and scripts relayed as they came (kind/reason: coding, too_large, undecodable).",
            ["reason"],
            registry=own,
        )
        self._relay_failures = Counter(
            "console_proxy_proxy_relay_failures",
            "Requests to Hasura that failed, by reason (unreachable, timeout, broken, bad_host).",
            ["reason"],
            registry=own,
        )
        # This process's rewrites, for /_telemetry/v1/status.
        self._rewrite_counts: dict[str, int] = {}
        # Shown by _Collector in local mode only: with a queue, the queue's own count is the one shown.
        self._accepted = Counter(
            "console_proxy_events_accepted", "Events accepted (answered 202), by source.", ["source"], registry=None
        )
        self._stats: Callable[[], QueueStats] | None = None
        self._queue_gauges: Callable[[], list[tuple[str, str, float]]] | None = None
        self._clock = clock
        self._refusals: dict[str, tuple[float, int]] = {}
        if multiprocess_dir:
            MultiProcessCollector(self.registry, path=multiprocess_dir)  # type: ignore[no-untyped-call]
        else:
            ProcessCollector(registry=self.registry)
        self._read_failing: set[str] = set()
        self.registry.register(_Collector(self))

    # ---- hooks (called on the event loop) ---------------------------------------------------------------------

    def received(self, n: int, source: str = DEFAULT_SOURCE) -> None:
        self._received.labels(source).inc(n)

    def accepted(self, n: int, source: str = DEFAULT_SOURCE) -> None:
        if self._stats is None:
            self._accepted.labels(source).inc(n)

    def rejected(self, reason: str, source: str = DEFAULT_SOURCE) -> None:
        self._rejected.labels(source, reason).inc()
        self._log_refusal(reason)

    def _log_refusal(self, reason: str) -> None:
        # Every kind of refusal reaches the log, a flood of one kind a line a minute with its count.
        now = self._clock()
        last, held = self._refusals.get(reason, (None, 0))
        if last is not None and now - last < REFUSAL_LOG_EVERY_S:
            self._refusals[reason] = (last, held + 1)
            return
        self._refusals[reason] = (now, 0)
        if held:
            logger.warning("refused a batch: %s (and %d more like it in the last minute)", reason, held)
        else:
            logger.warning("refused a batch: %s", reason)

    def dropped(self, reason: str, n: int = 1, source: str = DEFAULT_SOURCE) -> None:
        self._dropped.labels(source, reason).inc(n)

    def fields_dropped(self, reason: str, n: int, source: str) -> None:
        self._fields_dropped.labels(source, reason).inc(n)

    def unknown_actions(self, n: int, source: str) -> None:
        self._unknown_actions.labels(source).inc(n)

    def learned(self, kind: str, n: int) -> None:
        """`n` new raw values of `kind` (route, action) kept in the local suggestions file."""
        self._learned.labels(kind).inc(n)

    def rules_reloaded(self, ok: bool) -> None:
        self._reloads.labels("ok" if ok else "refused").inc()

    def rewritten(self, kind: str) -> None:
        """A console page got the page script, or a script had the telemetry URL replaced (`kind`: page, script)."""
        self._rewrites.labels(kind).inc()
        self._rewrite_counts[kind] = self._rewrite_counts.get(kind, 0) + 1

    def left_untouched(self, kind: str, reason: str) -> None:
        """A page or script that was relayed as it came, and why (coding, too_large, undecodable)."""
        self._rewrites_skipped.labels(f"{kind}/{reason}").inc()

    def relay_failed(self, reason: str) -> None:
        """A request to Hasura that failed (unreachable, timeout, broken, bad_host), counted by reason."""
        self._relay_failures.labels(reason).inc()

    def proxying(self) -> None:
        """Show the rewrite counters from the start (at 0), in reverse-proxy mode."""
        for kind in ("page", "script"):
            self._rewrites.labels(kind)
            self._rewrite_counts.setdefault(kind, 0)

    def rewrites(self) -> dict[str, int]:
        """This process's rewrites so far, by kind (for /_telemetry/v1/status)."""
        return dict(self._rewrite_counts)

    def retried(self) -> None:
        self._retried.inc()

    def observe_upstream(self, seconds: float, status: int) -> None:
        self._latency.labels(status=str(status)).observe(seconds)

    def request(self, path: str, status: int) -> None:
        """One answer of the standalone server: `path` is a fixed class (`events`, `console`, ...), never a path."""
        self._requests.labels(path, str(status)).inc()

    def attach_spool(self, stats: Callable[[], QueueStats] | None) -> None:
        """Read the delivery figures from this callable at each scrape (None detaches)."""
        self._stats = stats

    def attach_queue_gauges(self, read: Callable[[], list[tuple[str, str, float]]] | None) -> None:
        """Also show these (name, help, value) figures of a shared queue at each scrape (None detaches); a name
        ending in `_total` is a counter, any other a gauge."""
        self._queue_gauges = read

    # ---- exposition ------------------------------------------------------------------------------------------

    async def render_async(self) -> bytes:
        """The Prometheus text, made in a thread (the queue is read, and with workers, their files)."""
        return await asyncio.to_thread(self.render)

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))

    def _families(self) -> Iterator[Family]:
        build = GaugeMetricFamily(
            "console_proxy_build_info",
            "Always 1: the version of console-proxy and of Python serving it.",
            labels=["version", "python"],
        )
        build.add_metric([__version__, platform.python_version()], 1)
        yield build
        if self._stats is None:
            if not self.multiprocess_dir:
                yield from self._accepted.collect()  # type: ignore[misc]
            return
        stats = self._read_stats()
        if stats is None:
            return
        for name, value, text in (
            ("accepted", stats.accepted, "Events accepted (committed to the queue, answered 202)."),
            ("forwarded", stats.forwarded, "Events the collector took (2xx)."),
            ("dead_lettered", stats.dead_lettered, "Events the collector refused for good (4xx), kept aside."),
            ("expired", stats.expired, "Events removed from the queue for being older than the maximum age."),
            ("lost", stats.lost, "Events accepted and then lost with a Redis that kept nothing (restarted)."),
        ):
            yield CounterMetricFamily(f"console_proxy_events_{name}", text, value=value)
        yield GaugeMetricFamily("console_proxy_spool_events", "Events in the queue now.", value=stats.spooled)
        yield GaugeMetricFamily(
            "console_proxy_spool_bytes", "Bytes of event JSON in the queue now.", value=stats.spooled_bytes
        )
        yield GaugeMetricFamily(
            "console_proxy_last_delivery_timestamp_seconds",
            "Unix time of the last 2xx from the collector (0: never).",
            value=stats.last_delivery_at or 0.0,
        )
        yield from _topic_families(stats.topics or ())
        yield from self._read_queue_gauges()

    def _read_queue_gauges(self) -> Iterator[Family]:
        if self._queue_gauges is None:
            return
        try:
            gauges = self._queue_gauges()
        except Exception as exc:  # an unreachable queue must not break the scrape
            self._read_failed("cannot read the queue for metrics: %s", exc)
            return
        self._read_failing.discard("cannot read the queue for metrics: %s")
        for name, text, value in gauges:
            if name.endswith("_total"):
                yield CounterMetricFamily(name.removesuffix("_total"), text, value=value)
            else:
                yield GaugeMetricFamily(name, text, value=value)

    def _read_stats(self) -> QueueStats | None:
        assert self._stats is not None
        try:
            stats = self._stats()
        except Exception as exc:  # an unreadable queue must not break the scrape
            self._read_failed("cannot read the spool for metrics: %s", exc)
            return None
        self._read_failing.discard("cannot read the spool for metrics: %s")
        return stats

    def _read_failed(self, message: str, exc: Exception) -> None:
        # Once per outage, not once per scrape: the queue's own lines say when it is back.
        if message not in self._read_failing:
            self._read_failing.add(message)
            logger.error(message, exc)


def _topic_families(topics: tuple[TopicAccount, ...]) -> Iterator[Family]:
    """Per topic: accepted, each fate, queued and the gap, read from the queue (so the same in every worker)."""
    accepted = CounterMetricFamily(
        "console_proxy_topic_events_accepted", "Events accepted (committed to the queue), by topic.", labels=["topic"]
    )
    fates = CounterMetricFamily(
        "console_proxy_upstream_events",
        "Accepted events that left the queue, by topic and outcome: the collector's stored, duplicates and rejected;"
        " uncounted (a 2xx without counts); dead_lettered, expired, lost.",
        labels=["topic", "outcome"],
    )
    queued = GaugeMetricFamily(
        "console_proxy_topic_events_queued", "Events in the queue now, by topic.", labels=["topic"]
    )
    gap = GaugeMetricFamily(
        "console_proxy_accounting_gap_events",
        "Accepted events that neither an outcome nor the queue accounts for, by topic (0 when it adds up).",
        labels=["topic"],
    )
    for account in topics:
        accepted.add_metric([account.topic], account.accepted)
        for fate in FATES:
            fates.add_metric([account.topic, fate], getattr(account, fate))
        queued.add_metric([account.topic], account.queued)
        gap.add_metric([account.topic], account.gap)
    yield from (accepted, fates, queued, gap)


class _Collector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def describe(self) -> Iterator[Family]:
        return iter(())

    def collect(self) -> Iterator[Family]:
        return self._metrics._families()

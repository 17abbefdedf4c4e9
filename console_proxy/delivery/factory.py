"""The one place that decides where accepted events go: the local file, or (with --upstream) a queue and a
forwarder: the SQLite spool under the state directory, or the Redis stream that several processes share."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from console_proxy.core.metrics import Metrics
from console_proxy.core.settings import Settings
from console_proxy.delivery.forwarding import ForwardingSink
from console_proxy.delivery.local import LOCAL_EVENTS_FILE, LocalFileSink
from console_proxy.delivery.queue import DurableQueue
from console_proxy.delivery.sink import Sink
from console_proxy.delivery.spool.spool import SPOOL_FILE_NAME, Spool
from console_proxy.hasura.optout import TelemetryDecision


def make_sink(
    settings: Settings,
    decision: TelemetryDecision,
    *,
    state_dir: Path,
    metrics: Metrics | None = None,
) -> Sink:
    """The sink for these settings; only called when `decision.enabled` (a disabled proxy has no sink at all).

    Without `settings.upstream` this is local mode: `<state_dir>/events.jsonl`, nothing leaves the machine.
    """
    if not decision.enabled:
        raise ValueError("make_sink is only called when telemetry is enabled")
    if settings.upstream is None:
        return LocalFileSink(state_dir / LOCAL_EVENTS_FILE, max_bytes=settings.spool_max_bytes)
    # `metrics` reads the queue at each scrape.
    return ForwardingSink(settings, make_queue(settings, state_dir=state_dir), metrics=metrics)


def make_queue(settings: Settings, *, state_dir: Path, clock: Callable[[], float] = time.time) -> DurableQueue:
    """The queue of upstream mode: `<state_dir>/spool.db`, or the Redis stream of `--queue redis://...`."""
    if settings.queue == "sqlite":
        return spool_queue(settings, state_dir / SPOOL_FILE_NAME, clock=clock)
    from console_proxy.delivery.redis.queue import RedisQueue  # here: the redis extra is optional

    return RedisQueue(
        settings.queue,
        max_events=settings.spool_max_events,
        max_bytes=settings.spool_max_bytes,
        max_age_s=settings.spool_max_age_s,
        lease_s=settings.queue_lease_s,
        require_aof=settings.queue_require_aof,
        clock=clock,
    )


def spool_queue(settings: Settings, path: Path, *, clock: Callable[[], float] = time.time) -> Spool:
    """The SQLite spool at `path`, bounded by the settings."""
    return Spool(
        path,
        max_events=settings.spool_max_events,
        max_bytes=settings.spool_max_bytes,
        max_age_s=settings.spool_max_age_s,
        clock=clock,
    )

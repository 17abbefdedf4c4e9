"""The one place that decides where accepted events go: the local file, or (with --upstream) delivery."""

from __future__ import annotations

from pathlib import Path

from console_proxy.core.metrics import Metrics
from console_proxy.core.settings import Settings
from console_proxy.delivery.local import LOCAL_EVENTS_FILE, LocalFileSink
from console_proxy.delivery.sink import Sink
from console_proxy.delivery.spool.spool import SPOOL_FILE_NAME
from console_proxy.delivery.upstream import SpoolSink
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
    if settings.upstream is not None and settings.queue != "sqlite":
        from console_proxy.delivery.redis.sink import RedisSink  # here: the redis extra is optional

        return RedisSink(settings, settings.queue, metrics=metrics)
    if settings.upstream is not None:
        # Upstream mode: `<state_dir>/spool.db`, sent on by the forwarder; `metrics` reads the spool at scrape.
        return SpoolSink(settings, state_dir / SPOOL_FILE_NAME, metrics=metrics)
    return LocalFileSink(state_dir / LOCAL_EVENTS_FILE, max_bytes=settings.spool_max_bytes)

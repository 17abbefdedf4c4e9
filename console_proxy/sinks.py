"""The one place that decides where accepted events go: the local file, or (with --upstream) delivery."""

from __future__ import annotations

import os
from collections.abc import Mapping

from console_proxy.local_sink import LOCAL_EVENTS_FILE, LocalFileSink, resolve_state_dir
from console_proxy.optout import TelemetryDecision
from console_proxy.settings import Settings
from console_proxy.sink import Sink


def make_sink(settings: Settings, decision: TelemetryDecision, *, env: Mapping[str, str] | None = None) -> Sink:
    """The sink for these settings; only called when `decision.enabled` (a disabled proxy has no sink at all).

    Without `settings.upstream` this is local mode: `<state dir>/events.jsonl`, nothing leaves the machine.
    """
    if not decision.enabled:
        raise ValueError("make_sink is only called when telemetry is enabled")
    state_dir = resolve_state_dir(settings.state_dir, os.environ if env is None else env)
    # Upstream delivery (spool and forwarder) plugs in here; until it does, events stay local.
    return LocalFileSink(state_dir / LOCAL_EVENTS_FILE)

"""The body of `GET /_telemetry/v1/status`: the contract's keys (`enabled`, `mode`, `upload`, `test_events`), and
for the reports page and `console-proxy status --url` what decided, how to turn telemetry on, which IDs are
attached and where they came from, and where events go (URLs without credentials)."""

from __future__ import annotations

import asyncio
from typing import Any

from console_proxy.asgi.runtime import TelemetryRuntime
from console_proxy.delivery.queue_url import display_queue_url
from console_proxy.hasura.identity import display_url


def _queue_reading(runtime: TelemetryRuntime) -> dict[str, Any] | None:
    queue = getattr(runtime.sink, "queue", None)
    if queue is None:
        return None
    try:
        stats = queue.stats()
    except Exception:  # an unreachable queue is said as such, never a failed answer
        return {"readable": False}
    return {
        "readable": True,
        "events": stats.spooled,
        "bytes": stats.spooled_bytes,
        "accepted": stats.accepted,
        "forwarded": stats.forwarded,
        "dead_lettered": stats.dead_lettered,
        "expired": stats.expired,
        "lost": stats.lost,
        "last_delivery_at": stats.last_delivery_at,
        # Per topic: accepted, what became of it by the collector's answers, queued, and the gap (0: it adds up).
        "topics": None if stats.topics is None else [account.as_dict() for account in stats.topics],
    }


async def status_body(runtime: TelemetryRuntime) -> dict[str, Any]:
    """The status of a started runtime."""
    settings = runtime.settings
    decision = runtime.decision
    body: dict[str, Any] = {
        "enabled": runtime.enabled,
        "mode": settings.mode,
        "upload": runtime.upload,
        # Development builds' events: kept apart under the topic console_test, or dropped.
        "test_events": "dropped" if settings.drop_test_events else "kept",
        "decided_by": decision.source if decision is not None else None,
    }
    if settings.hasura_url is not None:
        # Reverse-proxy mode: how many console pages got the page script, and scripts their URL replaced.
        body["rewrites"] = runtime.metrics.rewrites()
    if decision is not None and not decision.enabled:
        body["how_to_turn_on"] = decision.how_to_turn_on()
        return body
    identity = runtime.identity
    if identity is not None:
        current = identity.current
        body["identity"] = {
            "server_uuid": current.server_uuid,
            "cli_uuid": current.cli_uuid,
            "server_version": current.server_version,
            **identity.sources(),
            "hasura_endpoint": display_url(settings.hasura_endpoint) if settings.hasura_endpoint else None,
        }
    delivery: dict[str, Any] = {
        "upstream": display_url(settings.upstream) if settings.upstream else None,
        "queue": None
        if settings.upstream is None
        else ("sqlite" if settings.queue == "sqlite" else display_queue_url(settings.queue)),
    }
    if settings.upstream is not None:
        delivery["reading"] = await asyncio.to_thread(_queue_reading, runtime)
    body["delivery"] = delivery
    return body

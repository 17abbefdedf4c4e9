"""An outbound event as the sinks, the spool and the forwarder receive it, numbered for the delivery tests."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import cast

from console_proxy.core.events import ConsoleEvent, OutboundEvent


def event(i: int) -> ConsoleEvent:
    """Event number `i`: a fixed, valid outbound event whose event_id is the UUIDv4 built from `i`."""
    return {
        "event_id": str(uuid.UUID(int=i, version=4)),
        "event_type": "A/B",
        "url": "/x",
        "console_mode": "server",
        "server_uuid": None,
        "cli_uuid": None,
        "server_version": None,
        "timestamp": "2026-11-27T19:00:00.000Z",
        "data": None,
    }


def opaque(fields: Mapping[str, object]) -> OutboundEvent:
    """`fields` as it is, typed as an outbound event for code that stores events as opaque JSON objects.

    The local file, the spool, the Redis queue and the recent-events ring never look inside an event; their tests
    use a few made-up keys (`{"n": 1, "pad": ...}`, `{"event_id": "s1"}`), and the byte bounds some of them test
    are sized to those exact objects, which a whole event would change.
    """
    # The one place a test's made-up event is passed off as an OutboundEvent, on purpose: a cast, not a conversion.
    return cast(OutboundEvent, fields)


STATUS_CONTRACT = ("enabled", "mode", "upload", "test_events")


def contract_keys(status: dict[str, object]) -> dict[str, object]:
    """The keys of `/_telemetry/v1/status` that the contract fixes (the rest says more, for people)."""
    return {key: status[key] for key in STATUS_CONTRACT}

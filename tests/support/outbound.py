"""An outbound event as the sinks, the spool and the forwarder receive it, numbered for the delivery tests."""

from __future__ import annotations

import uuid
from typing import Any


def event(i: int) -> dict[str, Any]:
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

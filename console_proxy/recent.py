"""The last outbound events, as they were (or will be) forwarded, each with its topic: what leaves, shown to the
console's user."""

from __future__ import annotations

import collections
from collections.abc import Iterable, Mapping
from typing import Any

from console_proxy.events import OutboundEvent

RECENT_EVENTS = 100


class RecentEvents:
    """A ring buffer of the newest `size` outbound events, oldest first; with a topic, each shows it first."""

    def __init__(self, size: int = RECENT_EVENTS) -> None:
        self._events: collections.deque[Mapping[str, Any]] = collections.deque(maxlen=size)

    def extend(self, events: Iterable[OutboundEvent], topic: str | None = None) -> None:
        if topic is None:
            self._events.extend(events)
        else:
            self._events.extend({"topic": topic, **event} for event in events)

    def snapshot(self) -> list[Mapping[str, Any]]:
        return list(self._events)

"""The last outbound events, as they were (or will be) forwarded: what leaves, shown to the console's user."""

from __future__ import annotations

import collections
from collections.abc import Iterable

from console_proxy.events import OutboundEvent

RECENT_EVENTS = 100


class RecentEvents:
    """A ring buffer of the newest `size` outbound events, oldest first."""

    def __init__(self, size: int = RECENT_EVENTS) -> None:
        self._events: collections.deque[OutboundEvent] = collections.deque(maxlen=size)

    def extend(self, events: Iterable[OutboundEvent]) -> None:
        self._events.extend(events)

    def snapshot(self) -> list[OutboundEvent]:
        return list(self._events)

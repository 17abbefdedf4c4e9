"""The last outbound events, as they were (or will be) forwarded, each with its topic: what leaves, shown to the
console's user."""

from __future__ import annotations

import collections
import itertools
from collections.abc import Iterable, Mapping
from typing import Any

from console_proxy.core.events import OutboundEvent

RECENT_EVENTS = 100


class RecentEvents:
    """A ring buffer of the newest `size` outbound events, oldest first; with a topic, each shows it first."""

    def __init__(self, size: int = RECENT_EVENTS) -> None:
        # (topic, event): the copy that shows the topic is made when someone looks, not for every event kept.
        self._events: collections.deque[tuple[str | None, Mapping[str, Any]]] = collections.deque(maxlen=size)

    def extend(self, events: Iterable[OutboundEvent], topic: str | None = None) -> None:
        self._events.extend(zip(itertools.repeat(topic), events))

    def snapshot(self) -> list[Mapping[str, Any]]:
        return [event if topic is None else {"topic": topic, **event} for topic, event in self._events]

"""Log filters of the standalone server: uvicorn's lines that would carry raw routes, and its per-connection lines
that a flood would multiply."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

# uvicorn's lines about one connection: under a flood, a line a minute (with a count), never one each.
PER_CONNECTION_LINES = frozenset(
    {
        "Exceeded concurrency limit.",
        "Invalid HTTP request received.",
        "Unsupported upgrade request.",
        "Invalid UTF-8 sequence received from client.",
        "connection open",
        "connection closed",
        "connection rejected (%d %s)",
    }
)


class WithoutRequestLines(logging.Filter):
    """Drop uvicorn's WebSocket handshake lines: they carry the raw path and query even without an access log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith('%s - "WebSocket %s"'))


class Throttled(logging.Filter):
    """Lets each of `messages` through at most once per `every_s`, with the count of those held back since, and
    without a traceback: a flood of refused connections costs a line a minute, not a line (or a traceback) each."""

    def __init__(self, messages: frozenset[str], every_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self._messages = messages
        self._every_s = every_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg if isinstance(record.msg, str) else ""
        if message not in self._messages:
            return True
        now = self._clock()
        if message in self._last and now - self._last[message] < self._every_s:
            self._held[message] = self._held.get(message, 0) + 1
            return False
        self._last[message] = now
        held = self._held.pop(message, 0)
        if held:
            record.msg = f"{message} ({held} more like it held back)"
        # One line: uvicorn logs some of these with a traceback (an invalid UTF-8 frame).
        record.exc_info = None
        record.exc_text = None
        return True

"""The standalone server's logging: one line a record, with its UTC time, as text or as one JSON object
(`--log-format`), for console-proxy's and uvicorn's loggers alike; and the filters of uvicorn's lines that would
carry raw routes, or that a flood would multiply."""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import Callable
from typing import Any

LOG_FORMATS = ("text", "json")

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


def throttled_connection_lines() -> Throttled:
    return Throttled(PER_CONNECTION_LINES)


def _utc(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


class TextFormatter(logging.Formatter):
    """`2026-11-27T19:00:00.123Z WARNING  message`: the time in UTC, to the millisecond."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-8s %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 -- logging's
        return _utc(record)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: `time` (UTC), `level`, `logger`, `pid`, `message`, and `exception` (its type and
    frames: an exception's own text might quote a request)."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": _utc(record),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            document["exception"] = record.exc_info[0].__name__
            document["frames"] = "".join(traceback.format_tb(record.exc_info[2]))
        return json.dumps(document, ensure_ascii=False)


def logging_config(log_format: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` document for console-proxy's logger and uvicorn's: given to uvicorn as
    `log_config`, so each worker process sets it up the same way as it starts."""
    formatter = JsonFormatter if log_format == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"main": {"()": f"{formatter.__module__}.{formatter.__qualname__}"}},
        "filters": {
            "without_request_lines": {"()": f"{__name__}.WithoutRequestLines"},
            "throttled": {"()": f"{__name__}.throttled_connection_lines"},
        },
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "main", "stream": "ext://sys.stderr"}},
        "loggers": {
            "console_proxy": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO", "filters": ["without_request_lines", "throttled"]},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }

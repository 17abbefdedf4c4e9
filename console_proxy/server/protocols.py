"""uvicorn's HTTP protocols with a deadline for each request: its headers and body must arrive in time.

uvicorn bounds the idle time between requests (timeout_keep_alive) but not a request being sent: a client
that sends half a request line and stops holds its connection (and a slot of limit_concurrency) for ever,
so a thousand of them starve everyone else.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import time
from collections.abc import Callable
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from console_proxy.core.settings import DEFAULT_REQUEST_TIMEOUT_S

# h11's states of the client in which its request is complete, or no more will come on this connection.
_SENT = frozenset({h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR, h11.SWITCHED_PROTOCOL})


class _Deadline:
    """One timer per connection: armed while a request is being received, it closes the transport when it fires."""

    def __init__(self) -> None:
        self._handle: asyncio.TimerHandle | None = None

    def arm(self, loop: asyncio.AbstractEventLoop, delay: float, transport: asyncio.BaseTransport) -> None:
        self.disarm()
        self._handle = loop.call_later(delay, self._fire, transport)

    def disarm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self, transport: asyncio.BaseTransport) -> None:
        self._handle = None
        if not transport.is_closing():
            transport.close()  # nothing logged: a line per slow client is what a flood would feed on


class TimedH11Protocol(H11Protocol):
    """h11 with a deadline: a client gets `request_timeout_s` to send a request (headers and body), counted from
    the connection or from the end of the previous response."""

    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline = _Deadline()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline.arm(self.loop, self.request_timeout_s, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._deadline.disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state in _SENT:
            self._deadline.disarm()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._deadline.disarm()  # the transport now belongs to the WebSocket protocol
        super().handle_websocket_upgrade(event)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state not in _SENT:
            self._deadline.arm(self.loop, self.request_timeout_s, self.transport)


def _httptools_protocol() -> type[asyncio.Protocol] | None:
    if importlib.util.find_spec("httptools") is None:
        return None
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class TimedHttpToolsProtocol(HttpToolsProtocol):
        """httptools with the same deadline as TimedH11Protocol."""

        request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._deadline = _Deadline()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._deadline.arm(self.loop, self.request_timeout_s, transport)

        def connection_lost(self, exc: Exception | None) -> None:
            self._deadline.disarm()
            super().connection_lost(exc)

        def on_message_complete(self) -> None:
            self._deadline.disarm()
            super().on_message_complete()

        def handle_websocket_upgrade(self) -> None:
            self._deadline.disarm()
            super().handle_websocket_upgrade()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and not self.pipeline:
                self._deadline.arm(self.loop, self.request_timeout_s, self.transport)

    return TimedHttpToolsProtocol


def timed_protocol(request_timeout_s: float, *, httptools: bool = True) -> type[asyncio.Protocol]:
    """The protocol class for uvicorn's `http=`: httptools when installed (what "auto" picks), else h11."""
    base = (_httptools_protocol() if httptools else None) or TimedH11Protocol
    return type(base.__name__, (base,), {"request_timeout_s": request_timeout_s})


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

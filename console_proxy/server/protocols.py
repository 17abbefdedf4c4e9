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


# The answer to a connection beyond --max-connections, before anything is read: its descriptor is freed at once.
_FULL = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
# Connections refused for the cap are logged at most this often, with a count.
CAP_LOG_EVERY_S = 60.0

logger = logging.getLogger("console_proxy")


class _CapNotices:
    """The cap's log line: when it is first hit, then at most once every CAP_LOG_EVERY_S with the count since."""

    def __init__(self) -> None:
        self.refused = 0
        self.said_at: float | None = None

    def refused_one(self, cap: int) -> None:
        self.refused += 1
        now = time.monotonic()
        if self.said_at is None or now - self.said_at >= CAP_LOG_EVERY_S:
            logger.warning(
                "%d connections refused (503, closed at once): %d are open, the cap (--max-connections, within the "
                "open-files limit)",
                self.refused,
                cap,
            )
            self.refused, self.said_at = 0, now


class RequestDeadline:
    """Mixed in before one of uvicorn's HTTP protocols: a client gets `request_timeout_s` to send a request (headers
    and body), counted from the connection or from the end of the previous response.

    The protocol says when the request it reads is complete (`disarm()` then) and whether another is due
    (`awaiting_request()`); the deadline is lifted for good when the connection becomes a WebSocket."""

    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S
    # Connections beyond this many are answered 503 and closed as soon as they are accepted (None: no cap).
    max_connections: int | None = None
    cap_notices: _CapNotices = _CapNotices()
    # The protocol's own attributes, which the mixin reads.
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    connections: set[Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline = _Deadline()

    def awaiting_request(self) -> bool:
        raise NotImplementedError

    def disarm(self) -> None:
        self._deadline.disarm()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]  # the protocol's, after this in the MRO
        cap = self.max_connections
        if cap is not None and len(self.connections) > cap:
            # uvicorn's own limit answers 503 only once a request has come in: a connection that sends nothing
            # would hold its descriptor, and enough of them exhaust the process's. This one is let go now.
            self.cap_notices.refused_one(cap)
            self.transport.write(_FULL)  # the protocol's own, set by its connection_made
            self.transport.close()
            return
        self._deadline.arm(self.loop, self.request_timeout_s, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._deadline.disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def handle_websocket_upgrade(self, *args: Any) -> None:
        self._deadline.disarm()  # the transport now belongs to the WebSocket protocol
        super().handle_websocket_upgrade(*args)  # type: ignore[misc]

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if not self.transport.is_closing() and self.awaiting_request():
            self._deadline.arm(self.loop, self.request_timeout_s, self.transport)


class TimedH11Protocol(RequestDeadline, H11Protocol):
    """h11 with the request deadline."""

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state in _SENT:
            self.disarm()

    def awaiting_request(self) -> bool:
        return self.conn.their_state not in _SENT


def _httptools_protocol() -> type[asyncio.Protocol] | None:
    if importlib.util.find_spec("httptools") is None:
        return None
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class TimedHttpToolsProtocol(RequestDeadline, HttpToolsProtocol):
        """httptools with the request deadline."""

        def on_message_complete(self) -> None:
            self.disarm()
            super().on_message_complete()

        def awaiting_request(self) -> bool:
            return not self.pipeline

    return TimedHttpToolsProtocol


def timed_protocol(
    request_timeout_s: float, *, httptools: bool = True, max_connections: int | None = None
) -> type[asyncio.Protocol]:
    """The protocol class for uvicorn's `http=`: httptools when installed (what "auto" picks), else h11; with the
    request deadline and, given `max_connections`, the cap applied as each connection is accepted."""
    base = (_httptools_protocol() if httptools else None) or TimedH11Protocol
    attributes = {"request_timeout_s": request_timeout_s, "max_connections": max_connections}
    return type(base.__name__, (base,), {**attributes, "cap_notices": _CapNotices()})

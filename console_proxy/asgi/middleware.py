"""TelemetryMiddleware: answers /_telemetry/v1/* beside any ASGI app and passes everything else through."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
from collections.abc import Awaitable, Callable, Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from console_proxy.asgi.budgets import client_key
from console_proxy.asgi.lifespan import run_lifespan
from console_proxy.asgi.origins import allowed_origins, origin_of
from console_proxy.asgi.proxy_headers import resolve, trusted_proxies
from console_proxy.asgi.runtime import TelemetryRuntime, log_unexpected
from console_proxy.asgi.status import status_body
from console_proxy.core.errors import BatchError, SinkRefused
from console_proxy.core.settings import Settings
from console_proxy.sources import (
    EVENTS_PATH,
    HASURA_HTTP_PATH,
    HTTP_SOURCES,
    WEBSOCKET_SOURCE,
    WS_PATH,
    WS_PATHS,
    Source,
    hasura_http,
)
from console_proxy.sources.base import body_too_large, check_media_type

__all__ = ["EVENTS_PATH", "RECENT_PATH", "STATUS_PATH", "WS_PATH", "TelemetryMiddleware"]

STATUS_PATH = "/_telemetry/v1/status"
RECENT_PATH = "/_telemetry/v1/recent"

# WebSocket close codes (RFC 6455 and the IANA registry).
WS_POLICY_VIOLATION = 1008
WS_INTERNAL_ERROR = 1011
WS_TRY_AGAIN_LATER = 1013

# How long a client should wait when the runtime has not started yet, or an answer failed unexpectedly.
NOT_STARTED_RETRY_AFTER_S = 1

logger = logging.getLogger("console_proxy")

Handler = Callable[[Scope, Receive, Send], Awaitable[None]]


def _fixed(error: str) -> bytes:
    return json.dumps({"error": error}, separators=(",", ":")).encode()


_NOT_STARTED = _fixed("telemetry is not started")
# Metric labels (and answers) of WebSocket messages dropped before they reach a source.
WS_BINARY_MESSAGE = "binary_message"
WS_INVALID_TEXT = "invalid_utf8"
_WS_BINARY = _fixed("binary message")
_WS_INVALID_TEXT = _fixed("invalid UTF-8")
WS_NOT_SERVED = "websocket_not_served"
_WS_NOT_SERVED = _fixed("this server cannot serve WebSocket")
_UNAVAILABLE = _fixed("temporarily unavailable")
_METHOD_NOT_ALLOWED = _fixed("method not allowed")
_FOREIGN_ORIGIN = _fixed("origin not allowed")
# The metric label of a request refused for its Origin or Sec-Fetch-Site (403).
FOREIGN_ORIGIN = "foreign_origin"


async def _respond(send: Send, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None) -> None:
    raw = [(b"cache-control", b"no-store")]
    if body:
        raw += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _content_length(scope: Scope) -> int | None:
    length = _header(scope, b"content-length")
    if length is None:
        return None
    length = length.strip()
    # isdecimal() alone admits non-ASCII digits that int() then refuses.
    return int(length) if length.isascii() and length.isdecimal() else None


async def _read_body(scope: Scope, receive: Receive, source: Source) -> bytes | None:
    """The request body once its media type and size pass `source`'s limits (BatchError 415/413 otherwise, the
    size refused as soon as the declared length or the bytes read pass it); None when the client went away."""
    check_media_type(_header(scope, b"content-type"), source.media_types)
    limit = source.max_body_bytes
    declared = _content_length(scope)
    if declared is not None and declared > limit:
        raise body_too_large()
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise body_too_large()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _asks_for_websocket(scope: Scope) -> bool:
    upgrade = _header(scope, b"upgrade")
    return upgrade is not None and "websocket" in upgrade.lower()


def _local_path(scope: Scope) -> str:
    # Mounted under a sub-path (Starlette's Mount, uvicorn's --root-path), the path still holds the root path.
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root + "/") else path


class TelemetryMiddleware:
    """Serve `/_telemetry/v1/events|ws|server|cli|status|recent`, and Hasura's own collector paths `/v1/ws` and
    `/v1/http`, in front of `app`; pass everything else through.

    `__init__` does no I/O and starts nothing. The runtime (decision, rules, identity, sink) starts when
    the wrapped app's lifespan starts up, or when an embedder enters `middleware.running()` itself.
    """

    def __init__(self, app: ASGIApp, *, settings: Settings | None = None, runtime: TelemetryRuntime | None = None):
        if (settings is None) == (runtime is None):
            # Both would leave one of them ignored; give the parts (a sink, rules, identity, env) to the runtime.
            raise TypeError("TelemetryMiddleware takes settings= or runtime=, exactly one of them")
        if runtime is None:
            assert settings is not None
            runtime = TelemetryRuntime(settings)
        self.app = app
        self.runtime = runtime
        self.settings = runtime.settings
        self._http: dict[str, tuple[str, Handler]] = {
            STATUS_PATH: ("GET", self._status),
            RECENT_PATH: ("GET", self._recent),
        }
        for path, source in HTTP_SOURCES.items():
            self._http[path] = ("POST", functools.partial(self._events, source))
        self._http[HASURA_HTTP_PATH] = ("POST", functools.partial(self._events, hasura_http.SOURCE))
        self._allowed_origins = allowed_origins(self.settings.allowed_origin)
        self._trusted = trusted_proxies(self.settings)

    def running(self) -> contextlib.AbstractAsyncContextManager[TelemetryRuntime]:
        """`async with middleware.running():` from an embedder's own lifespan (same as `runtime.running()`)."""
        return self.runtime.running()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http" and _local_path(scope) in self._http:
            await self._guarded_http(resolve(scope, self._trusted), receive, send)
        elif kind == "websocket" and _local_path(scope) in WS_PATHS:
            await self._guarded_websocket(resolve(scope, self._trusted), receive, send)
        elif kind == "http" and _local_path(scope) in WS_PATHS and _asks_for_websocket(scope):
            await self._websocket_as_http(send)
        elif kind == "lifespan":
            await run_lifespan(self.app, self.runtime, scope, receive, send)
        else:
            await self.app(scope, receive, send)

    # HTTP

    async def _guarded_http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = _local_path(scope)
        method, handler = self._http[path]
        if method == "POST" and origin_of(scope, self._allowed_origins) is None:
            # Before anything else, a CORS preflight included: a page elsewhere may not write here.
            source = hasura_http.SOURCE if path == HASURA_HTTP_PATH else HTTP_SOURCES.get(path, WEBSOCKET_SOURCE)
            self.runtime.metrics.rejected(FOREIGN_ORIGIN, source.name)
            await _respond(send, 403, _FOREIGN_ORIGIN)
            return
        if scope["method"] != method:
            await _respond(send, 405, _METHOD_NOT_ALLOWED, {"allow": method})
            return
        response_started = False

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            response_started = True
            await send(message)

        try:
            await handler(scope, receive, tracking_send)
        except Exception as exc:
            log_unexpected(path, exc)
            if not response_started:
                await _respond(send, 503, _UNAVAILABLE, {"retry-after": str(NOT_STARTED_RETRY_AFTER_S)})

    async def _status(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime = self.runtime
        if not runtime.started:
            await _respond(send, 503, _NOT_STARTED, {"retry-after": str(NOT_STARTED_RETRY_AFTER_S)})
            return
        body = await status_body(runtime)
        await _respond(send, 200, json.dumps(body, separators=(",", ":")).encode())

    async def _recent(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = json.dumps(await self.runtime.recent.read(), separators=(",", ":"), ensure_ascii=False)
        await _respond(send, 200, body.encode())

    async def _events(self, source: Source, scope: Scope, receive: Receive, send: Send) -> None:
        runtime = self.runtime
        if not runtime.started:
            await _respond(send, 503, _NOT_STARTED, {"retry-after": str(NOT_STARTED_RETRY_AFTER_S)})
            return
        if not runtime.enabled:
            await _respond(send, 204)
            return
        client = client_key(scope, origin_of(scope, self._allowed_origins))
        try:
            try:
                body = await _read_body(scope, receive, source)
            except BatchError as exc:
                # Refused before it reached the runtime, and still charged: refusing is work too.
                await runtime.charge(client, source)
                runtime.metrics.rejected(exc.label, source.name)
                raise
            if body is None:
                return  # the client went away: nobody to answer
            if source is hasura_http.SOURCE:
                source = self._routed(body)
            ack = await runtime.ingest(source, body, client=client)
        except BatchError as exc:  # counted
            await _respond(send, exc.status, exc.body)
        except SinkRefused as exc:  # counted
            await _respond(send, exc.status, _fixed(exc.reason), {"retry-after": str(exc.retry_after)})
        else:
            # None: telemetry was turned off while the body was read; nothing was kept.
            await (_respond(send, 204) if ack is None else _respond(send, 202, ack.body()))

    def _routed(self, body: bytes) -> Source:
        """The server's or the CLI's source for a body of Hasura's `/v1/http`; BatchError, counted, for neither."""
        try:
            return hasura_http.route(body)
        except BatchError as exc:
            self.runtime.metrics.rejected(exc.label, hasura_http.NAME)
            raise

    # WebSocket

    async def _guarded_websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._websocket(scope, receive, send)
        except Exception as exc:
            log_unexpected(WS_PATH, exc)
            # The socket may already be gone; then there is nothing left to tell.
            with contextlib.suppress(Exception):
                await send({"type": "websocket.close", "code": WS_INTERNAL_ERROR})

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        runtime = self.runtime
        origin = origin_of(scope, self._allowed_origins)
        if origin is None:
            runtime.metrics.rejected(FOREIGN_ORIGIN, WEBSOCKET_SOURCE.name)
            await send({"type": "websocket.close", "code": WS_POLICY_VIOLATION})  # before accept: HTTP 403
            return
        await send({"type": "websocket.accept"})
        if not runtime.started:
            await send({"type": "websocket.close", "code": WS_TRY_AGAIN_LATER})
            return
        client = client_key(scope, origin)
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                return
            if not runtime.enabled:
                # Kept open and ignored: a console that reconnects at once on close must not spin.
                continue
            await self._websocket_message(message, send, client)

    async def _websocket_message(self, message: Message, send: Send, client: str) -> None:
        """Take one message. A bad one (binary, oversized, not JSON, refused) is answered with its error and
        counted, and the socket stays open, so the messages the console sent after it are kept: only a protocol
        violation closes it, and the server's WebSocket library does that."""
        text = message.get("text")
        try:
            if text is None:
                await self._refuse_message(client, WS_BINARY_MESSAGE)
                await send({"type": "websocket.send", "text": _WS_BINARY.decode()})
                return
            try:
                body = text.encode("utf-8")
            except UnicodeEncodeError:
                # A lone surrogate: the server's WebSocket library refuses invalid UTF-8 before it gets here.
                await self._refuse_message(client, WS_INVALID_TEXT)
                await send({"type": "websocket.send", "text": _WS_INVALID_TEXT.decode()})
                return
            # No media type to check: the handshake was the request.
            ack = await self.runtime.ingest(WEBSOCKET_SOURCE, body, client=client)
        except BatchError as exc:  # counted by ingest
            await send({"type": "websocket.send", "text": exc.body.decode()})
            return
        except SinkRefused as exc:  # counted
            await send({"type": "websocket.send", "text": _fixed(exc.reason).decode()})
            return
        if ack is not None:  # None: telemetry was turned off meanwhile, and the message is ignored
            await send({"type": "websocket.send", "text": ack.body().decode()})

    async def _refuse_message(self, client: str, label: str) -> None:
        # Charged like any other message (SinkRefused 429 when over budget), then counted as refused.
        await self.runtime.charge(client, WEBSOCKET_SOURCE)
        self.runtime.metrics.rejected(label)

    async def _websocket_as_http(self, send: Send) -> None:
        # A server without WebSocket support passes the handshake on as a plain request (uvicorn does so
        # when no WebSocket library is installed): say so once, stay not ready, and refuse it plainly.
        runtime = self.runtime
        runtime.metrics.rejected(WS_NOT_SERVED)
        if not runtime.websocket_unavailable:
            runtime.websocket_unavailable = True
            logger.error(
                "the server in front of console-proxy cannot serve WebSocket (under uvicorn: install 'websockets'"
                " or 'wsproto'), so the console's events on %s are lost and readiness reports not ready",
                WS_PATH,
            )
        await _respond(send, 501, _WS_NOT_SERVED)

"""TelemetryMiddleware: answers /_telemetry/v1/* beside any ASGI app and passes everything else through."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
from collections.abc import Awaitable, Callable, Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from console_proxy.asgi.budgets import client_key
from console_proxy.asgi.origins import allowed_origins, foreign_origin
from console_proxy.asgi.runtime import BodyReader, RequestFacts, TelemetryRuntime, log_unexpected
from console_proxy.core.errors import BatchError, ConsoleProxyError, SinkRefused
from console_proxy.core.settings import Settings
from console_proxy.delivery.sink import Sink
from console_proxy.hasura.identity import IdentityProvider
from console_proxy.rules.route_rules import RulesHolder
from console_proxy.sources import EVENTS_PATH, HTTP_SOURCES, WEBSOCKET_SOURCE, WS_PATH, Source
from console_proxy.sources.base import body_too_large

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


def _body_reader(receive: Receive) -> BodyReader:
    async def read(limit: int) -> bytes | None:
        """The request body, refused with 413 as soon as it passes `limit`; None when the client went away."""
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

    return read


def _message_reader(body: bytes) -> BodyReader:
    async def read(limit: int) -> bytes | None:
        if len(body) > limit:
            raise body_too_large()
        return body

    return read


def _asks_for_websocket(scope: Scope) -> bool:
    upgrade = _header(scope, b"upgrade")
    return upgrade is not None and "websocket" in upgrade.lower()


def _local_path(scope: Scope) -> str:
    # Mounted under a sub-path (Starlette's Mount, uvicorn's --root-path), the path still holds the root path.
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root + "/") else path


class TelemetryMiddleware:
    """Serve `/_telemetry/v1/events|ws|status|recent` in front of `app`; pass everything else through.

    `__init__` does no I/O and starts nothing. The runtime (decision, rules, identity, sink) starts when
    the wrapped app's lifespan starts up, or when an embedder enters `middleware.running()` itself.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        rules_holder: RulesHolder | None = None,
        sink: Sink | None = None,
        identity: IdentityProvider | None = None,
        env: Mapping[str, str] | None = None,
        runtime: TelemetryRuntime | None = None,
    ) -> None:
        self.app = app
        self.settings = settings
        if runtime is None:
            runtime = TelemetryRuntime(settings, rules_holder=rules_holder, sink=sink, identity=identity, env=env)
        else:
            # A given runtime was built with its own parts: taking others here too would silently ignore them.
            parts = {"rules_holder": rules_holder, "sink": sink, "identity": identity, "env": env}
            given = [f"{name}=" for name, part in parts.items() if part is not None]
            if given:
                raise TypeError(f"TelemetryMiddleware takes runtime= or {', '.join(given)}, not both")
            if runtime.settings != settings:
                raise ValueError("TelemetryMiddleware's settings must be the settings its runtime= was built with")
        self.runtime = runtime
        self._http: dict[str, tuple[str, Handler]] = {
            STATUS_PATH: ("GET", self._status),
            RECENT_PATH: ("GET", self._recent),
        }
        for path, source in HTTP_SOURCES.items():
            self._http[path] = ("POST", functools.partial(self._events, source))
        self._allowed_origins = allowed_origins(settings.allowed_origin)

    def running(self) -> contextlib.AbstractAsyncContextManager[TelemetryRuntime]:
        """`async with middleware.running():` from an embedder's own lifespan (same as `runtime.running()`)."""
        return self.runtime.running()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http" and _local_path(scope) in self._http:
            await self._guarded_http(scope, receive, send)
        elif kind == "websocket" and _local_path(scope) == WS_PATH:
            await self._guarded_websocket(scope, receive, send)
        elif kind == "http" and _local_path(scope) == WS_PATH and _asks_for_websocket(scope):
            await self._websocket_as_http(send)
        elif kind == "lifespan":
            await self._lifespan(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    # HTTP

    async def _guarded_http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = _local_path(scope)
        method, handler = self._http[path]
        if method == "POST" and foreign_origin(scope, self._allowed_origins):
            # Before anything else, a CORS preflight included: a page elsewhere may not write here.
            source = HTTP_SOURCES.get(path, WEBSOCKET_SOURCE)
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
        body = {
            "enabled": runtime.enabled,
            "mode": self.settings.mode,
            "upload": runtime.upload,
            # Development builds' events: kept apart under the topic console_test, or dropped.
            "test_events": "dropped" if self.settings.drop_test_events else "kept",
        }
        await _respond(send, 200, json.dumps(body, separators=(",", ":")).encode())

    async def _recent(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = json.dumps(self.runtime.recent.snapshot(), separators=(",", ":"), ensure_ascii=False)
        await _respond(send, 200, body.encode())

    async def _events(self, source: Source, scope: Scope, receive: Receive, send: Send) -> None:
        runtime = self.runtime
        if not runtime.started:
            await _respond(send, 503, _NOT_STARTED, {"retry-after": str(NOT_STARTED_RETRY_AFTER_S)})
            return
        if not runtime.enabled:
            await _respond(send, 204)
            return
        facts = RequestFacts(
            content_type=_header(scope, b"content-type"),
            content_length=_content_length(scope),
            client=client_key(scope),
        )
        try:
            ack = await runtime.ingest(source, facts, _body_reader(receive))
        except BatchError as exc:
            await _respond(send, exc.status, exc.body)
        except SinkRefused as exc:
            await _respond(send, exc.status, _fixed(exc.reason), {"retry-after": str(exc.retry_after)})
        else:
            if ack is not None:
                await _respond(send, 202, ack.body())

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
        if foreign_origin(scope, self._allowed_origins):
            runtime.metrics.rejected(FOREIGN_ORIGIN, WEBSOCKET_SOURCE.name)
            await send({"type": "websocket.close", "code": WS_POLICY_VIOLATION})  # before accept: HTTP 403
            return
        await send({"type": "websocket.accept"})
        if not runtime.started:
            await send({"type": "websocket.close", "code": WS_TRY_AGAIN_LATER})
            return
        client = client_key(scope)
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
        if text is None:
            self.runtime.metrics.rejected(WS_BINARY_MESSAGE)
            await send({"type": "websocket.send", "text": _WS_BINARY.decode()})
            return
        try:
            body = text.encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate: the server's WebSocket library refuses invalid UTF-8 before it gets here.
            self.runtime.metrics.rejected(WS_INVALID_TEXT)
            await send({"type": "websocket.send", "text": _WS_INVALID_TEXT.decode()})
            return
        try:
            facts = RequestFacts(websocket=True, client=client)
            ack = await self.runtime.ingest(WEBSOCKET_SOURCE, facts, _message_reader(body))
        except BatchError as exc:  # counted by ingest
            await send({"type": "websocket.send", "text": exc.body.decode()})
            return
        except SinkRefused as exc:  # counted by ingest
            await send({"type": "websocket.send", "text": _fixed(exc.reason).decode()})
            return
        if ack is not None:
            await send({"type": "websocket.send", "text": ack.body().decode()})

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

    # Lifespan

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime = self.runtime
        owned = False  # whether this lifespan started the runtime, and so stops it
        app_spoke = False

        async def lifespan_receive() -> Message:
            nonlocal app_spoke
            app_spoke = True
            return await receive()

        async def lifespan_send(message: Message) -> None:
            nonlocal owned, app_spoke
            app_spoke = True
            kind = message["type"]
            if kind == "lifespan.startup.complete" and not runtime.started:
                failure = await self._start_runtime()
                if failure is not None:
                    await send({"type": "lifespan.startup.failed", "message": failure})
                    return
                owned = True
            elif kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed") and owned:
                owned = False
                await runtime.stop()
            await send(message)

        try:
            await self.app(scope, lifespan_receive, lifespan_send)
        except Exception:
            if owned:
                await runtime.stop()
            if app_spoke:
                raise
            # The wrapped app does not speak lifespan at all: run the protocol for the runtime alone.
            await self._own_lifespan(receive, send)

    async def _own_lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                failure = await self._start_runtime()
                if failure is not None:
                    await send({"type": "lifespan.startup.failed", "message": failure})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.runtime.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _start_runtime(self) -> str | None:
        """Start the runtime; None, or the reason it failed for `lifespan.startup.failed`."""
        try:
            await self.runtime.start()
        except ConsoleProxyError as exc:
            logger.error("telemetry cannot start: %s", exc)
            return str(exc)
        except OSError as exc:
            logger.error("telemetry cannot start: %s: %s", exc.strerror, exc.filename)
            return f"telemetry cannot start: {exc.strerror}: {exc.filename}"
        return None

"""The HTTP half of the relay to Hasura: one request streamed there, its response streamed back.

Bodies stream both ways with no read timeout by default; only console pages and scripts are buffered, to be
changed (`rewrite.py`). A Hasura that cannot be reached gets 502, one that does not answer in time 504, each with a
fixed short body; a response that breaks off after it started is cut off (the client sees a truncated response, not
a complete one). Nothing of a request's headers or body is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable

import httpx
from starlette.types import Message, Receive, Scope, Send

from console_proxy.core.metrics import Metrics
from console_proxy.proxy import rewrite
from console_proxy.proxy.headers import Headers, get, request_headers, response_headers, without
from console_proxy.proxy.page_script import MARKER, page_script
from console_proxy.proxy.target import Target

logger = logging.getLogger("console_proxy")

BAD_GATEWAY = 502
GATEWAY_TIMEOUT = 504
_UNREACHABLE = json.dumps({"error": "hasura is unreachable"}).encode()
_TIMED_OUT = json.dumps({"error": "hasura did not answer in time"}).encode()
# Headers that no longer hold for a changed body.
_STALE = (b"content-length", b"etag", b"accept-ranges", b"content-md5", b"digest")


class Throttled:
    """A warning logged at most once per `every_s` seconds, with how many were held back since: a Hasura that is
    down costs a line a minute, not a line a request."""

    def __init__(self, every_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._every_s = every_s
        self._clock = clock
        self._last = -every_s
        self._held = 0

    def warn(self, message: str, *args: object) -> None:
        now = self._clock()
        if now - self._last < self._every_s:
            self._held += 1
            return
        held, self._held, self._last = self._held, 0, now
        logger.warning(message + (" (%d more like it since)" if held else ""), *args, *((held,) if held else ()))


class ClientGone(Exception):  # noqa: N818 -- an event, not a failure
    """The client went away while its request body was being read."""


async def fixed_answer(send: Send, status: int, body: bytes) -> None:
    """A short fixed JSON answer of the gate's own."""
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send(
        {"type": "http.response.start", "status": status, "headers": [*headers, (b"cache-control", b"no-store")]}
    )
    await send({"type": "http.response.body", "body": body})


def _has_body(scope: Scope) -> bool:
    headers = scope.get("headers", ())
    length = get(headers, b"content-length")
    return get(headers, b"transfer-encoding") is not None or (length is not None and length.strip() not in (b"", b"0"))


class HttpRelay:
    """Relay HTTP requests to `target`. `enabled()` is the gate's telemetry decision at the moment of a page.

    `transport` is the httpx transport to Hasura (built at `start()` when None); it is used directly, not through
    an httpx client, so no cookie jar, redirect, proxy variable or `.netrc` comes between the client and Hasura.
    """

    def __init__(
        self,
        target: Target,
        *,
        metrics: Metrics,
        enabled: Callable[[], bool],
        gate_only: bool,
        connect_timeout_s: float,
        read_timeout_s: float | None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.target = target
        self.metrics = metrics
        self._enabled = enabled
        self._gate_only = gate_only
        self._timeout = {"connect": connect_timeout_s, "read": read_timeout_s, "write": None, "pool": None}
        self._transport = transport
        self._owned = transport is None
        self._unreachable = Throttled()
        self._broken = Throttled()
        public = target.public_url
        self._page_gate_url = rewrite.gate_socket_url(public, scheme="", host="") if public else None

    async def start(self) -> None:
        if self._transport is None:
            limits = httpx.Limits(max_connections=None, max_keepalive_connections=100, keepalive_expiry=30.0)
            self._transport = httpx.AsyncHTTPTransport(limits=limits, trust_env=False, retries=0)

    async def aclose(self) -> None:
        if self._transport is not None and self._owned:
            await self._transport.aclose()
            self._transport = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self._transport is not None, "HttpRelay.start() was not awaited"
        body_done = asyncio.Event()
        content = self._body(receive, body_done) if _has_body(scope) else None
        if content is None:
            body_done.set()
        client = scope.get("client")
        request = httpx.Request(
            scope["method"],
            self.target.url(scope),
            headers=request_headers(
                scope.get("headers", ()), client=str(client[0]) if client else None, proto=self.target.scheme(scope)
            ),
            content=content,
            extensions={"timeout": self._timeout},
        )
        try:
            response = await self._transport.handle_async_request(request)
        except ClientGone:
            return
        except httpx.TimeoutException:
            self.metrics.relay_failed("timeout")
            await fixed_answer(send, GATEWAY_TIMEOUT, _TIMED_OUT)
            return
        except httpx.HTTPError as exc:
            self.metrics.relay_failed("unreachable")
            self._unreachable.warn("hasura is unreachable: %s", type(exc).__name__)
            await fixed_answer(send, BAD_GATEWAY, _UNREACHABLE)
            return
        try:
            await self._respond(scope, receive, send, response, body_done)
        finally:
            await response.aclose()

    async def _body(self, receive: Receive, done: asyncio.Event) -> AsyncIterator[bytes]:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                done.set()
                return

    async def _respond(
        self, scope: Scope, receive: Receive, send: Send, response: httpx.Response, body_done: asyncio.Event
    ) -> None:
        raw = list(response.headers.raw)
        headers = response_headers(raw, upstream=self.target.base, public=self.target.public_base(scope))
        kind = rewrite.kind(get(raw, b"content-type")) if response.status_code == 200 else None
        if kind is not None and scope["method"] == "HEAD":
            headers = without(headers, b"content-length", b"etag")  # the body it stands for would be changed
        start: Message = {"type": "http.response.start", "status": response.status_code, "headers": headers}
        if kind is None or scope["method"] != "GET":
            await self._stream(send, start, [], response, receive, body_done)
            return
        buffered: list[bytes] = []
        size = 0
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        try:
            async for chunk in stream:
                buffered.append(chunk)
                size += len(chunk)
                if size > rewrite.MAX_BUFFERED_BYTES:
                    self.metrics.left_untouched(kind, "too_large")
                    await self._stream(send, start, buffered, response, receive, body_done)
                    return
        except httpx.HTTPError:
            self.metrics.relay_failed("broken")
            self._broken.warn("hasura's response broke off before its end; the client gets a 502")
            await fixed_answer(send, BAD_GATEWAY, _UNREACHABLE)
            return
        body = b"".join(buffered)
        try:
            changed = await asyncio.to_thread(self._rewrite, kind, body, raw, scope)
        except rewrite.Untouched as untouched:
            self.metrics.left_untouched(kind, untouched.reason)
            changed = None
        if changed is None:
            await send(start)
        else:
            self.metrics.rewritten(kind)
            body = changed
            fixed = [*without(headers, *_STALE), (b"content-length", str(len(body)).encode())]
            await send({**start, "headers": fixed})
        await send({"type": "http.response.body", "body": body})

    def _rewrite(self, kind: str, body: bytes, raw: Headers, scope: Scope) -> bytes | None:
        """The changed body in its coding, or None when nothing needed changing."""
        coding = (get(raw, b"content-encoding") or b"").decode("latin-1")
        data = rewrite.decode(body, coding)
        if kind == rewrite.PAGE:
            script = page_script(on=self._enabled(), gate_only=self._gate_only, gate_url=self._page_gate_url)
            result = rewrite.inject(data, script, MARKER)
        else:
            socket_url = rewrite.gate_socket_url(
                self.target.public_url, scheme=self.target.scheme(scope), host=self.target.host(scope) or ""
            )
            result = rewrite.replace_literal(data, socket_url)
        return rewrite.encode(result.body, coding) if result.changes else None

    async def _stream(
        self,
        send: Send,
        start: Message,
        head: list[bytes],
        response: httpx.Response,
        receive: Receive,
        body_done: asyncio.Event,
    ) -> None:
        """Send `start`, the chunks already read, and the rest of the body as it comes; stop when the client goes."""
        pump = asyncio.create_task(self._pump(send, start, head, response))
        gone = asyncio.create_task(_client_gone(receive, body_done))
        try:
            await asyncio.wait({pump, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pump, gone):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        if pump.done() and not pump.cancelled():
            pump.result()

    async def _pump(self, send: Send, start: Message, head: list[bytes], response: httpx.Response) -> None:
        await send(start)
        for chunk in head:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        try:
            async for chunk in stream:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except httpx.HTTPError:
            # Too late for a status: the connection is closed without the body's end, so the client knows.
            self.metrics.relay_failed("broken")
            self._broken.warn("hasura's response broke off after it started; the client's connection is closed")
            return
        await send({"type": "http.response.body", "body": b""})


async def _client_gone(receive: Receive, body_done: asyncio.Event) -> None:
    # Once the request body is in, the next message is the client going away (or the response being complete).
    await body_done.wait()
    while (await receive())["type"] != "http.disconnect":
        pass

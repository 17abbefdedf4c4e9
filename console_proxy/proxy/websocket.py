"""The WebSocket half of the relay to Hasura: GraphQL subscriptions, both protocols, for as long as they live.

Hasura reads one `Sec-WebSocket-Protocol` header (`graphql-transport-ws` selects graphql-ws, anything else the
older Apollo protocol), so the upstream socket is opened with the client's subprotocols as they came and the client
is accepted with the one Hasura chose. Text and binary messages pass both ways; close codes and reasons pass back
(4400-4429 mean something to GraphQL clients). No idle timeout: a subscription may be silent for hours.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.types import Receive, Scope, Send

from console_proxy.core.metrics import Metrics
from console_proxy.proxy.headers import get, websocket_request_headers
from console_proxy.proxy.relay import Throttled
from console_proxy.proxy.target import Target

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

# Where Hasura serves WebSocket: the GraphQL API, its older path, and the Relay API.
RELAYED_PATHS = frozenset({"/v1/graphql", "/v1alpha1/graphql", "/v1beta1/relay"})
# Close codes a close frame may carry (RFC 6455, 7.4): 1005, 1006 and 1015 are only ever reported, never sent.
_NOT_SENDABLE = frozenset({1004, 1005, 1006, 1015})
NORMAL = 1000
GOING_AWAY = 1001
POLICY = 1008
_DENIED = {
    404: json.dumps({"error": "no WebSocket here"}).encode(),
    502: json.dumps({"error": "hasura is unreachable"}).encode(),
    504: json.dumps({"error": "hasura did not answer in time"}).encode(),
}
_REFUSED = json.dumps({"error": "hasura refused the WebSocket"}).encode()

Connect = Callable[..., Any]


def sendable(code: int | None, fallback: int) -> int:
    """`code` when a close frame may carry it, else `fallback`."""
    if code is None or code in _NOT_SENDABLE or not (1000 <= code <= 1014 or 3000 <= code <= 4999):
        return fallback
    return code


class WebSocketRelay:
    """Relay WebSockets on RELAYED_PATHS to `target`; `connect` is websockets' client `connect` (injectable; the
    library is imported on the first WebSocket, so a server without it still relays HTTP)."""

    def __init__(
        self, target: Target, *, metrics: Metrics, connect_timeout_s: float, connect: Connect | None = None
    ) -> None:
        self.target = target
        self.metrics = metrics
        self._connect_timeout_s = connect_timeout_s
        self._connect = connect
        self._unreachable = Throttled()

    async def __call__(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        if path not in RELAYED_PATHS:
            await _deny(scope, send, 404, _DENIED[404])
            return
        upstream = await self._open(scope, send)
        if upstream is None:
            return
        try:
            await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol})
            await _relay(upstream, receive, send)
        finally:
            with contextlib.suppress(Exception):
                await upstream.close()

    async def _open(self, scope: Scope, send: Send) -> ClientConnection | None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI
        from websockets.typing import Origin

        headers = scope.get("headers", ())
        origin = get(headers, b"origin")
        agent = get(headers, b"user-agent")
        client = scope.get("client")
        try:
            connection: ClientConnection = await (self._connect or connect)(
                self.target.websocket_url(scope),
                origin=Origin(origin.decode("latin-1")) if origin is not None else None,
                subprotocols=list(scope.get("subprotocols") or ()) or None,
                additional_headers=[
                    (n.decode("latin-1"), v.decode("latin-1"))
                    for n, v in websocket_request_headers(
                        headers, client=str(client[0]) if client else None, proto=self.target.scheme(scope)
                    )
                ],
                user_agent_header=agent.decode("latin-1") if agent is not None else None,
                proxy=None,
                open_timeout=self._connect_timeout_s,
                max_size=None,
                compression="deflate",
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            await _deny(scope, send, status if 400 <= status <= 599 else 502, _REFUSED)
            return None
        except TimeoutError:
            self.metrics.relay_failed("timeout")
            await _deny(scope, send, 504, _DENIED[504])
            return None
        except (OSError, InvalidHandshake, InvalidURI) as exc:
            self.metrics.relay_failed("unreachable")
            self._unreachable.warn("hasura's WebSocket is unreachable: %s", type(exc).__name__)
            await _deny(scope, send, 502, _DENIED[502])
            return None
        return connection


async def _deny(scope: Scope, send: Send, status: int, body: bytes) -> None:
    """Refuse the handshake: with `status` and `body` when the server can say so, else with 403."""
    if "websocket.http.response" in scope.get("extensions", {}):
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": POLICY})


async def _relay(upstream: ClientConnection, receive: Receive, send: Send) -> None:
    up = asyncio.create_task(_client_to_upstream(upstream, receive))
    down = asyncio.create_task(_upstream_to_client(upstream, send))
    try:
        await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (up, down):
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _client_to_upstream(upstream: ClientConnection, receive: Receive) -> None:
    from websockets.exceptions import ConnectionClosed

    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.receive":
            text = message.get("text")
            try:
                await upstream.send(text if text is not None else (message.get("bytes") or b""))
            except ConnectionClosed:
                return  # the other task passes Hasura's close on
        elif kind == "websocket.disconnect":
            code = sendable(message.get("code"), GOING_AWAY)
            with contextlib.suppress(ConnectionClosed):
                await upstream.close(code, message.get("reason") or "")
            return


async def _upstream_to_client(upstream: ClientConnection, send: Send) -> None:
    from websockets.exceptions import ConnectionClosed

    try:
        async for data in upstream:
            if isinstance(data, str):
                await send({"type": "websocket.send", "text": data})
            else:
                await send({"type": "websocket.send", "bytes": data})
    except ConnectionClosed:
        pass
    except OSError:  # the client is gone (uvicorn's ClientDisconnected)
        with contextlib.suppress(Exception):
            await upstream.close(GOING_AWAY)
        return
    rcvd = upstream.close_code
    code = sendable(rcvd, NORMAL if rcvd == 1005 else GOING_AWAY)
    with contextlib.suppress(Exception):
        await send({"type": "websocket.close", "code": code, "reason": upstream.close_reason or ""})

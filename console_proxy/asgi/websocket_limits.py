"""WebSocket limits for the standalone server: how many may be open, how many of them one client may hold, and how
long one may stay silent."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from console_proxy.asgi.budgets import client_key
from console_proxy.asgi.origins import allowed_origins, origin_of
from console_proxy.core.settings import DEFAULT_MAX_WEBSOCKETS_PER_CLIENT

logger = logging.getLogger("console_proxy")

# RFC 6455 close codes: the server is going away (idle), try again later (full).
WS_GOING_AWAY = 1001
WS_TRY_AGAIN_LATER = 1013
# A refused handshake is logged at most this often, with the count since.
REFUSAL_LOG_EVERY_S = 60.0


def _local_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root + "/") else path


class WebSocketLimits:
    """Refuse a WebSocket handshake while `max_websockets` are open, or while its client holds `max_per_client` of
    them, and close one that sends nothing for `idle_s` seconds (a console reconnects when it has something to say).
    HTTP passes straight through, and so do WebSockets on paths other than `paths` (None: every path), such as
    GraphQL subscriptions relayed to Hasura, which may be silent for hours.

    A client is whose budget its events spend (`budgets.client_key`: the address a trusted proxy gave or the peer's,
    every loopback address one, and the origin decision), so one local process cannot take every slot, and a script
    that sends no Origin cannot take the console page's.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_websockets: int,
        idle_s: float,
        max_per_client: int = DEFAULT_MAX_WEBSOCKETS_PER_CLIENT,
        allowed_origin: Iterable[str] = (),
        paths: frozenset[str] | None = None,
    ) -> None:
        self.app = app
        self.max_websockets = max_websockets
        self.max_per_client = max_per_client
        self.idle_s = idle_s
        self._allowed = allowed_origins(allowed_origin)
        self.paths = paths
        # Shared by every connection: the counts are the point.
        self.open = 0
        self.by_client: dict[str, int] = {}
        self._refused = 0
        self._refusal_logged_at = -REFUSAL_LOG_EVERY_S

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket" or (self.paths is not None and _local_path(scope) not in self.paths):
            await self.app(scope, receive, send)
            return
        client = client_key(scope, origin_of(scope, self._allowed))
        held = self.by_client.get(client, 0)
        if self.open >= self.max_websockets or held >= self.max_per_client:
            await self._refuse(receive, send, full=self.open >= self.max_websockets)
            return
        self.open += 1
        self.by_client[client] = held + 1
        try:
            await self.app(scope, self._idle_bounded(receive, send), send)
        finally:
            self.open -= 1
            left = self.by_client[client] - 1
            if left:
                self.by_client[client] = left
            else:
                del self.by_client[client]

    def _idle_bounded(self, receive: Receive, send: Send) -> Receive:
        closed = False

        async def bounded() -> Message:
            nonlocal closed
            if closed:
                return {"type": "websocket.disconnect", "code": WS_GOING_AWAY}
            try:
                async with asyncio.timeout(self.idle_s):
                    return await receive()
            except TimeoutError:
                closed = True
                await send({"type": "websocket.close", "code": WS_GOING_AWAY})
                return {"type": "websocket.disconnect", "code": WS_GOING_AWAY}

        return bounded

    async def _refuse(self, receive: Receive, send: Send, *, full: bool) -> None:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.close", "code": WS_TRY_AGAIN_LATER})  # before accept: HTTP 403
        self._refused += 1
        now = time.monotonic()
        if now - self._refusal_logged_at >= REFUSAL_LOG_EVERY_S:
            why = "the limit" if full else f"a client held {self.max_per_client}, its limit"
            logger.warning("%d WebSocket handshakes refused: %d are open, %s", self._refused, self.open, why)
            self._refused = 0
            self._refusal_logged_at = now

"""HasuraProxy: the ASGI app of reverse-proxy mode, behind the telemetry middleware (docs/design.md,
"Reverse-proxy mode"): every request that is not the gate's own is relayed to Hasura."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable

import httpx
from starlette.types import Message, Receive, Scope, Send

from console_proxy.asgi.runtime import log_unexpected
from console_proxy.core.metrics import Metrics
from console_proxy.core.settings import Settings
from console_proxy.proxy import rewrite
from console_proxy.proxy.relay import HttpRelay, fixed_answer
from console_proxy.proxy.target import Target
from console_proxy.proxy.websocket import Connect, WebSocketRelay

_BROKEN = json.dumps({"error": "bad gateway"}).encode()
_BAD_HOST = json.dumps({"error": "invalid host header"}).encode()


def _local_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root + "/") else path


class HasuraProxy:
    """Relay HTTP and WebSocket to `settings.hasura_url`. `enabled()` is the gate's telemetry decision, read for each
    console page. Building one does no I/O; `start()`/`aclose()` (or `async with proxy.running():`) open and close
    the connection pool to Hasura."""

    def __init__(
        self,
        settings: Settings,
        *,
        metrics: Metrics,
        enabled: Callable[[], bool],
        transport: httpx.AsyncBaseTransport | None = None,
        connect: Connect | None = None,
    ) -> None:
        if settings.hasura_url is None:
            raise ValueError("HasuraProxy needs settings.hasura_url")
        target = Target.of(settings.hasura_url, settings.public_url)
        self.metrics = metrics
        metrics.proxying()
        self.http = HttpRelay(
            target,
            metrics=metrics,
            enabled=enabled,
            gate_only=settings.gate_decides_console,
            connect_timeout_s=settings.hasura_connect_s,
            read_timeout_s=settings.hasura_read_s,
            transport=transport,
        )
        self.websocket = WebSocketRelay(
            target, metrics=metrics, connect_timeout_s=settings.hasura_connect_s, connect=connect
        )
        self._target = target

    async def start(self) -> None:
        await self.http.start()

    async def aclose(self) -> None:
        await self.http.aclose()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[HasuraProxy]:
        await self.start()
        try:
            yield self
        finally:
            await self.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            return
        host = self._target.host(scope)
        if host is not None and not rewrite.host_ok(host):
            # Written into scripts (the gate's socket URL), so only a plain name or address and a port.
            self.metrics.relay_failed("bad_host")
            if kind == "http":
                await fixed_answer(send, 400, _BAD_HOST)
            else:
                await receive()
                await send({"type": "websocket.close", "code": 1008})
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            if kind == "http":
                await self.http(scope, receive, tracking_send)
            else:
                await self.websocket(scope, receive, tracking_send, _local_path(scope))
        except Exception as exc:
            # Never a 500: a relay that broke on something nobody raised on purpose is a bad gateway.
            log_unexpected("a relayed request", exc)
            if not started:
                with contextlib.suppress(Exception):
                    if kind == "http":
                        await fixed_answer(send, 502, _BROKEN)
                    else:
                        await send({"type": "websocket.close", "code": 1011})

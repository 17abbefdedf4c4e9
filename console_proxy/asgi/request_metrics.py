"""Counts every answer of the standalone server by path class and status, for `/metrics`: a fixed class for each
path (never the path itself, which would name the console's databases and tables)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from console_proxy.core.metrics import Metrics

# Path -> class; a path under the console's prefix is "console", anything else "other".
PATH_CLASSES = {
    "/_telemetry/v1/events": "events",
    "/_telemetry/v1/server": "server",
    "/_telemetry/v1/cli": "cli",
    "/_telemetry/v1/ws": "ws",
    "/_telemetry/v1/status": "status",
    "/_telemetry/v1/recent": "recent",
    "/healthz": "healthz",
    "/readyz": "readyz",
    "/metrics": "metrics",
}
# A WebSocket refused before its handshake completed is seen by the client as HTTP 403.
WS_ACCEPTED = 101
WS_REFUSED = 403


def path_class(path: str, prefix: str) -> str:
    known = PATH_CLASSES.get(path)
    if known is not None:
        return known
    if path == "/" or path == prefix or path.startswith(prefix + "/"):
        return "console"
    return "other"


class RequestMetrics:
    """Outermost middleware of the app: counts each response's status (a WebSocket: accepted or refused)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, prefix: str) -> None:
        self.app = app
        self.metrics = metrics
        self.prefix = prefix.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        counted = False
        group = path_class(scope["path"], self.prefix)

        async def counting_send(message: Message) -> None:
            nonlocal counted
            if not counted:
                status = None
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                elif message["type"] == "websocket.accept":
                    status = WS_ACCEPTED
                elif message["type"] in ("websocket.close", "websocket.http.response.start"):
                    status = int(message.get("status", WS_REFUSED))
                if status is not None:
                    counted = True
                    self.metrics.request(group, status)
            await send(message)

        await self.app(scope, receive, counting_send)

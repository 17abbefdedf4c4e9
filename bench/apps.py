"""The apps bench_ingest.sh and bench_serve.py serve under uvicorn (`uvicorn --factory apps:NAME`)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from console_proxy import Settings, create_app
from console_proxy.delivery.sink import OutboundEvent


def _settings() -> Settings:
    # The one client's budget as large as bench_serve.py gives `serve`: taken for every batch, never spent.
    return Settings(
        state_dir=Path(os.environ["BENCH_STATE_DIR"]),
        server_uuid="11111111-2222-4333-8444-555555555555",
        client_rate=1e9,
        client_burst=10**9,
    )


def proxy() -> Starlette:
    """The standalone server as `console-proxy serve` builds it, in local mode (each batch fsynced)."""
    return create_app(_settings())


class DiscardingSink:
    """A sink that keeps nothing (the null contestant; bench_hotpath.py's whole-app phase)."""

    async def start(self) -> None:
        pass

    async def put(self, topic: str, events: Sequence[OutboundEvent]) -> None:
        pass

    def ready(self) -> bool:
        return True

    async def aclose(self, *, drain: bool = True) -> None:
        pass


def proxy_nodisk() -> Starlette:
    """The same app with a sink that keeps nothing: what parsing, rules and the middleware cost without the disk."""
    return create_app(_settings(), sink=DiscardingSink())


def bare() -> Starlette:
    """The floor: an endpoint that only parses the JSON body and answers 202."""

    async def events(request: Request) -> JSONResponse:
        batch = json.loads(await request.body())
        return JSONResponse({"accepted": len(batch["events"]), "dropped": 0}, status_code=202)

    return Starlette(routes=[Route("/_telemetry/v1/events", events, methods=["POST"])])


def raw() -> ASGIApp:
    """The server's own floor: a raw ASGI app that reads the body and answers a fixed 202, parsing nothing."""
    body = b'{"accepted":20,"dropped":0}'
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 202, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app

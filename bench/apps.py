"""The two apps bench_ingest.sh compares under the same uvicorn settings (uvicorn --factory apps:proxy|bare)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from console_proxy import Settings, create_app
from console_proxy.delivery.sink import OutboundEvent


def proxy() -> Starlette:
    """The standalone server as `console-proxy serve` builds it, in local mode (each batch fsynced)."""
    state_dir = Path(os.environ["BENCH_STATE_DIR"])
    return create_app(Settings(state_dir=state_dir, server_uuid="11111111-2222-4333-8444-555555555555"))


class _DiscardingSink:
    async def start(self) -> None:
        pass

    async def put(self, topic: str, events: Sequence[OutboundEvent]) -> None:
        pass

    def ready(self) -> bool:
        return True

    async def aclose(self) -> None:
        pass


def proxy_nodisk() -> Starlette:
    """The same app with a sink that keeps nothing: what parsing, rules and the middleware cost without the disk."""
    state_dir = Path(os.environ["BENCH_STATE_DIR"])
    settings = Settings(state_dir=state_dir, server_uuid="11111111-2222-4333-8444-555555555555")
    return create_app(settings, sink=_DiscardingSink())


def bare() -> Starlette:
    """The floor: an endpoint that only parses the JSON body and answers 202."""

    async def events(request: Request) -> JSONResponse:
        batch = json.loads(await request.body())
        return JSONResponse({"accepted": len(batch["events"]), "dropped": 0}, status_code=202)

    return Starlette(routes=[Route("/_telemetry/v1/events", events, methods=["POST"])])

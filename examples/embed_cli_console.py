"""Embedding console-proxy in a CLI's own console server, in cli mode.

A CLI that serves its console locally (as `hasura console` does on 127.0.0.1:9695) wraps its
Starlette app in TelemetryMiddleware: one line. The middleware answers /_telemetry/v1/* beside the
console, starts with the app's lifespan, attaches the CLI's UUID from ~/.hasura/config.json
(created when missing) and keeps accepted events in <state dir>/events.jsonl.

    python examples/embed_cli_console.py --port 9695
"""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from console_proxy import Settings, TelemetryMiddleware

PAGE = """<!doctype html><title>my CLI's console</title>
<script>
  // The console's telemetry client posts {type, route} batches to the proxy beside it.
  navigator.sendBeacon("/_telemetry/v1/events",
    JSON.stringify({events: [{type: "@@router/LOCATION_CHANGE", route: location.pathname}]}));
</script>"""


async def console_page(request: Request) -> HTMLResponse:
    return HTMLResponse(PAGE)


def build_app(state_dir: Path | None = None) -> TelemetryMiddleware:
    """The CLI's console server (any ASGI app will do) with the telemetry gate in front."""
    cli_console = Starlette(routes=[Route("/console", console_page), Route("/console/{path:path}", console_page)])
    return TelemetryMiddleware(cli_console, settings=Settings(mode="cli", state_dir=state_dir))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=9695)
    parser.add_argument("--state-dir", type=Path, default=None, help="default: ~/.local/state/console-proxy")
    args = parser.parse_args()
    # No access log: request lines would carry the console's raw routes.
    uvicorn.run(build_app(args.state_dir), host="127.0.0.1", port=args.port, access_log=False)


if __name__ == "__main__":
    main()

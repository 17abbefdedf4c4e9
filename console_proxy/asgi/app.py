"""The standalone server's app: the console's static files under the prefix (or, in reverse-proxy mode, the relay to
Hasura), health checks, the middleware."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from pathlib import PurePosixPath

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Scope

from console_proxy.asgi.hosts import trusted_hosts
from console_proxy.asgi.middleware import TelemetryMiddleware
from console_proxy.asgi.proxy_headers import ProxyHeaders, trusted_proxies
from console_proxy.asgi.request_metrics import RequestMetrics
from console_proxy.asgi.runtime import TelemetryRuntime
from console_proxy.asgi.straight import StraightApp, straight_hosts
from console_proxy.asgi.websocket_limits import WebSocketLimits
from console_proxy.core.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from console_proxy.core.settings import Settings
from console_proxy.delivery.sink import Sink
from console_proxy.hasura.identity import IdentityProvider
from console_proxy.hasura.optout import TelemetryDecision
from console_proxy.proxy.app import HasuraProxy
from console_proxy.resources import default_static_dir
from console_proxy.rules.route_rules import RulesHolder
from console_proxy.sources import WS_PATHS

INDEX_FILE = "index.html"
# The gate's probes, in every mode; in reverse-proxy mode the bare /healthz, /readyz and /metrics are Hasura's.
PROBES = "/_telemetry/v1"


class ConsoleFiles(StaticFiles):
    """Static files with a single-page-app fallback: an unknown path without a file extension gets index.html,
    so the console's own router can take it; a missing asset (`app.js`, `logo.png`) stays a real 404."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            return await super().get_response(path, scope)
        except HTTPException as exc:
            if exc.status_code != 404 or "." in PurePosixPath(path).name:
                raise
            return await super().get_response(INDEX_FILE, scope)


def create_app(
    settings: Settings,
    *,
    rules_holder: RulesHolder | None = None,
    sink: Sink | None = None,
    identity: IdentityProvider | None = None,
    env: Mapping[str, str] | None = None,
    decision: TelemetryDecision | None = None,
    websocket: bool = True,
) -> Starlette:
    """The standalone server: the console under `settings.prefix`, `/healthz`, `/readyz`, `/metrics` (also under
    `/_telemetry/v1/`), and TelemetryMiddleware in front. Its lifespan runs the telemetry runtime
    (`app.state.telemetry`). With `settings.hasura_url` (reverse-proxy mode), everything but the gate's own paths
    is relayed to Hasura (`app.state.proxy`) and the probes are only under `/_telemetry/v1/`.

    `websocket=False` says the server it runs under cannot serve WebSocket: `/readyz` is then never
    ready, since the console sends its events over `/_telemetry/v1/ws`."""
    runtime = TelemetryRuntime(
        settings, rules_holder=rules_holder, sink=sink, identity=identity, env=env, decision=decision
    )
    prefix = settings.prefix.rstrip("/")

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "live"})

    async def readyz(request: Request) -> Response:
        if not websocket:
            return JSONResponse({"status": "not ready", "reason": "no WebSocket support"}, status_code=503)
        if runtime.ready():
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "not ready"}, status_code=503)

    async def metrics(request: Request) -> Response:
        return Response(await runtime.metrics.render_async(), media_type=METRICS_CONTENT_TYPE)

    async def to_console(request: Request) -> Response:
        return RedirectResponse(prefix + "/", status_code=307)

    probes = [("/healthz", healthz), ("/readyz", readyz), ("/metrics", metrics)]
    routes: list[BaseRoute] = [Route(PROBES + path, endpoint, methods=["GET"]) for path, endpoint in probes]
    proxy: HasuraProxy | None = None
    inner: ASGIApp
    if settings.hasura_url is not None:
        proxy = HasuraProxy(settings, metrics=runtime.metrics, enabled=lambda: runtime.enabled)
        inner = proxy
    else:
        routes += [Route(path, endpoint, methods=["GET"]) for path, endpoint in probes]
        if prefix:
            routes.append(Route("/", to_console, methods=["GET"]))
        inner = ConsoleFiles(directory=settings.static or default_static_dir(), html=True)
    routes.append(Mount(prefix if proxy is None else "", app=inner))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with runtime.running(), contextlib.AsyncExitStack() as stack:
            if proxy is not None:
                await stack.enter_async_context(proxy.running())
            yield

    # Outermost first: every answer is counted by path class and status. Then the client, scheme and Host as the
    # trusted proxies (if any) gave them; then a request for a Host that is not this server's is answered 400
    # before anything else (DNS rebinding: a page on attacker.example whose name now points here must not read
    # /recent or /metrics).
    app = StraightApp(
        routes=routes,
        middleware=[
            Middleware(RequestMetrics, metrics=runtime.metrics, prefix=prefix),
            Middleware(ProxyHeaders, trusted=trusted_proxies(settings)),
            Middleware(TrustedHostMiddleware, allowed_hosts=trusted_hosts(settings), www_redirect=False),
            Middleware(
                WebSocketLimits,
                max_websockets=settings.max_websockets,
                max_per_client=settings.max_websockets_per_client,
                idle_s=settings.websocket_idle_s,
                allowed_origin=settings.allowed_origin,
                paths=WS_PATHS,
            ),
            Middleware(TelemetryMiddleware, runtime=runtime),
        ],
        lifespan=lifespan,
    )
    # The events path's straight way past the stack above (asgi/straight.py): the same telemetry middleware and
    # the same counting, for a request none of the others would change.
    app.straight = RequestMetrics(
        TelemetryMiddleware(app.router, runtime=runtime), metrics=runtime.metrics, prefix=prefix
    )
    app.straight_hosts = straight_hosts(trusted_hosts(settings), proxies_trusted=bool(trusted_proxies(settings)))
    app.state.telemetry = runtime
    app.state.proxy = proxy
    return app

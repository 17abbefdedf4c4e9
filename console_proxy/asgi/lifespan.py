"""The ASGI lifespan of TelemetryMiddleware: the telemetry runtime starts after the wrapped app's start-up and stops
before its shutdown completes; for an app that does not speak lifespan at all, the runtime runs it alone."""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from console_proxy.asgi.runtime import TelemetryRuntime
from console_proxy.core.errors import ConsoleProxyError

logger = logging.getLogger("console_proxy")


async def run_lifespan(app: ASGIApp, runtime: TelemetryRuntime, scope: Scope, receive: Receive, send: Send) -> None:
    """Run `app`'s lifespan with `runtime` started once the app's start-up completed, stopped at its shutdown."""
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
            failure = await _start(runtime)
            if failure is not None:
                await send({"type": "lifespan.startup.failed", "message": failure})
                return
            owned = True
        elif kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed") and owned:
            owned = False
            await runtime.stop()
        await send(message)

    try:
        await app(scope, lifespan_receive, lifespan_send)
    except Exception:
        if owned:
            await runtime.stop()
        if app_spoke:
            raise
        # The wrapped app does not speak lifespan at all: run the protocol for the runtime alone.
        await _runtime_lifespan(runtime, receive, send)


async def _runtime_lifespan(runtime: TelemetryRuntime, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            failure = await _start(runtime)
            if failure is not None:
                await send({"type": "lifespan.startup.failed", "message": failure})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await runtime.stop()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _start(runtime: TelemetryRuntime) -> str | None:
    """Start the runtime; None, or the reason it failed for `lifespan.startup.failed`."""
    try:
        await runtime.start()
    except ConsoleProxyError as exc:
        logger.error("telemetry cannot start: %s", exc)
        return str(exc)
    except OSError as exc:
        logger.error("telemetry cannot start: %s: %s", exc.strerror, exc.filename)
        return f"telemetry cannot start: {exc.strerror}: {exc.filename}"
    return None

"""uvicorn as the standalone server runs it: its settings, the listening socket, the signals, the open-files limit."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import math
import resource
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from console_proxy.core.settings import Settings
from console_proxy.server.protocols import timed_protocol
from console_proxy.sources import WEBSOCKET_SOURCE

# Descriptors besides the connections: the event file or spool, the rules file, logs.
OTHER_OPEN_FILES = 64
WS_PING_INTERVAL_S = 20.0
WS_PING_TIMEOUT_S = 20.0


class ProxyServer(uvicorn.Server):
    """uvicorn's server with the proxy's signals: SIGINT/SIGTERM shut down cleanly (exit 0), SIGHUP reloads rules."""

    def __init__(self, config: uvicorn.Config, on_reload: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_reload = on_reload

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        loop.add_signal_handler(signal.SIGHUP, self._on_reload)
        try:
            yield
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                loop.remove_signal_handler(sig)


def server_options(settings: Settings, log_config: dict[str, Any] | None = None) -> dict[str, Any]:
    """uvicorn's settings for the standalone server, but the app and the protocol; loop "auto" picks uvloop when
    installed."""
    # No access log: request lines carry the console's raw routes, which name databases and tables.
    # ws_max_size: a message over the batch limit is read, dropped and counted with the socket left open (the
    # console's later messages are kept); only one over WS_MAX_MESSAGE_BYTES is refused (1009) unread.
    # timeout_graceful_shutdown: uvicorn otherwise waits for every open request, so a client that never
    # finishes its body would hold SIGTERM (and the spool's flush after it) off for ever.
    return {
        "host": settings.host,
        "port": settings.port,
        "loop": "auto",
        "lifespan": "on",
        "access_log": False,
        "server_header": False,
        # uvicorn's own proxy headers trust X-Forwarded-For from 127.0.0.1 by default: from every local process.
        # The app reads them itself, from --forwarded-allow-ips only (asgi/proxy_headers.py); relaying to Hasura,
        # the gate extends X-Forwarded-For with the peer as the socket says it.
        "proxy_headers": False,
        "log_level": "info",
        "log_config": log_config,
        "ws_max_size": WS_MAX_MESSAGE_BYTES,
        "timeout_graceful_shutdown": max(1, math.ceil(settings.shutdown_grace_s)),
        # Connections: a cap (503 beyond it), a deadline to send each request, pings that end dead WebSockets.
        "limit_concurrency": settings.max_connections,
        "ws_ping_interval": WS_PING_INTERVAL_S,
        "ws_ping_timeout": WS_PING_TIMEOUT_S,
        "workers": settings.workers,
        "ssl_certfile": settings.ssl_certfile,
        "ssl_keyfile": settings.ssl_keyfile,
    }


def server_config(app: ASGIApp, settings: Settings, log_config: dict[str, Any] | None = None) -> uvicorn.Config:
    """uvicorn's settings for the standalone server in one process; the protocol is httptools when installed (as
    http "auto" would), with a deadline for each request."""
    http = timed_protocol(settings.request_timeout_s, max_connections=settings.max_connections)
    return uvicorn.Config(app, http=http, **server_options(settings, log_config))


class ListenError(Exception):
    """The address cannot be listened on; the message is one sentence naming it."""


def listening_socket(host: str, port: int) -> socket.socket:
    """The bound socket to serve on, made with protocol TCP so every accepted connection gets TCP_NODELAY.

    uvicorn's `bind_socket()` makes the socket with protocol 0, and asyncio sets TCP_NODELAY only on connections
    whose socket says IPPROTO_TCP: without it a response written in two parts (headers, then body) waits for the
    client's delayed ACK, about 40 ms per request on a kept-alive connection. Raises ListenError, naming the
    address, when it cannot bind (uvicorn's own says only "[Errno 98] Address already in use").
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # inherited by accepted sockets on Linux
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        hint = "; another server holds it: stop it or give another --port" if exc.errno == errno.EADDRINUSE else ""
        raise ListenError(f"cannot listen on {shown}: {exc.strerror or exc}{hint}.") from None
    sock.set_inheritable(True)
    return sock


# The largest WebSocket message read at all: 16 batches. A larger one is a protocol-level refusal (close 1009).
WS_MAX_MESSAGE_BYTES = 16 * WEBSOCKET_SOURCE.max_body_bytes

NO_WEBSOCKET = (
    "websocket: this server cannot serve WebSocket (no 'websockets' or 'wsproto' library is installed), so the"
    " console's /_telemetry/v1/ws cannot take its events and /readyz reports not ready"
)


def websocket_supported() -> bool:
    """Whether uvicorn (with its default ws="auto") finds a WebSocket library to serve WebSocket with."""
    from uvicorn.protocols.websockets.auto import AutoWebSocketsProtocol

    return AutoWebSocketsProtocol is not None


def connections_within_open_files(max_connections: int) -> tuple[int, str | None]:
    """`max_connections`, or less when the process cannot open that many files: the soft limit is raised towards
    the hard one where allowed, and the cap is what the limit leaves after OTHER_OPEN_FILES. Returns the cap and, when
    it is below `max_connections`, the line to say so at start.

    --max-connections means nothing if the process runs out of descriptors first (a soft limit of 1024 is common):
    accept() then fails, connections are reset, and nobody says why."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max_connections + OTHER_OPEN_FILES
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return max_connections, None
    cap = max(1, soft - OTHER_OPEN_FILES)
    return cap, (
        f"connections: --max-connections {max_connections} is more than the open-files limit ({soft}, ulimit -n)"
        f" allows; at most {cap} at once (raise the limit to allow more)"
    )

"""`console-proxy serve`: the standalone server under uvicorn, with clear start-up lines and signal handling."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import resource
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import uvicorn
from starlette.types import ASGIApp

from console_proxy._version import __version__
from console_proxy.asgi.app import create_app
from console_proxy.cli.exits import EXIT_QUEUE, EXIT_RULES, EXIT_SERVER
from console_proxy.cli.options import (
    exit_on_settings_error,
    serve_options,
    setting_source,
    settings_from,
    state_dir_of,
)
from console_proxy.cli.status import display_url
from console_proxy.core.errors import RulesError, SettingsError
from console_proxy.core.settings import Settings
from console_proxy.delivery.local import LOCAL_EVENTS_FILE
from console_proxy.delivery.queue_url import display_queue_url
from console_proxy.hasura.cli_config import resolve_telemetry
from console_proxy.hasura.optout import TelemetryDecision, quote
from console_proxy.resources import default_rules_path, default_static_dir
from console_proxy.rules.route_rules import RulesHolder
from console_proxy.server.protocols import Throttled, timed_protocol
from console_proxy.server.supervisor import Supervisor
from console_proxy.sources import WEBSOCKET_SOURCE

# Descriptors besides the connections: the event file or spool, the rules file, logs.
OTHER_OPEN_FILES = 64
WS_PING_INTERVAL_S = 20.0
WS_PING_TIMEOUT_S = 20.0
# uvicorn's lines about one connection: under a flood, a line a minute (with a count), never one each.
PER_CONNECTION_LINES = frozenset(
    {
        "Exceeded concurrency limit.",
        "Invalid HTTP request received.",
        "Unsupported upgrade request.",
        "Invalid UTF-8 sequence received from client.",
        "connection open",
        "connection closed",
        "connection rejected (%d %s)",
    }
)

logger = logging.getLogger("console_proxy")


class WithoutRequestLines(logging.Filter):
    """Drop uvicorn's WebSocket handshake lines: they carry the raw path and query even without an access log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith('%s - "WebSocket %s"'))


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


def server_config(app: ASGIApp, settings: Settings) -> uvicorn.Config:
    """uvicorn's settings for the standalone server; loop "auto" picks uvloop and the protocol is httptools when
    installed (as http "auto" would), both with a deadline for each request."""
    # No access log: request lines carry the console's raw routes, which name databases and tables.
    # ws_max_size: a message over the batch limit is read, dropped and counted with the socket left open (the
    # console's later messages are kept); only one over WS_MAX_MESSAGE_BYTES is refused (1009) unread.
    # timeout_graceful_shutdown: uvicorn otherwise waits for every open request, so a client that never
    # finishes its body would hold SIGTERM (and the spool's flush after it) off for ever.
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="auto",
        http=timed_protocol(settings.request_timeout_s),
        lifespan="on",
        access_log=False,
        server_header=False,
        log_level="info",
        ws_max_size=WS_MAX_MESSAGE_BYTES,
        timeout_graceful_shutdown=max(1, math.ceil(settings.shutdown_grace_s)),
        # Connections: a cap (503 beyond it), a deadline to send each request, pings that end dead WebSockets.
        limit_concurrency=settings.max_connections,
        ws_ping_interval=WS_PING_INTERVAL_S,
        ws_ping_timeout=WS_PING_TIMEOUT_S,
    )


def listening_socket(config: uvicorn.Config) -> socket.socket:
    """The bound socket to serve on, with a protocol that says TCP, so every accepted connection gets TCP_NODELAY.

    uvicorn's `bind_socket()` makes the socket with protocol 0, and asyncio sets TCP_NODELAY only on connections
    whose socket says IPPROTO_TCP: without it a response written in two parts (headers, then body) waits for the
    client's delayed ACK, about 40 ms per request on a kept-alive connection. Exits (SystemExit) when it cannot bind.
    """
    sock = config.bind_socket()
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return sock
    # Family, type and protocol are read back from the descriptor (SO_PROTOCOL): IPPROTO_TCP.
    tcp = socket.socket(fileno=sock.detach())
    tcp.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # inherited by accepted sockets on Linux
    return tcp


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


def startup_lines(settings: Settings, base: str, decision: TelemetryDecision, holder: RulesHolder) -> list[str]:
    """What a person needs to know once the server listens: where the console is, where events go, and why."""
    static = settings.static or default_static_dir()
    rules = holder.path if holder.path is not None else default_rules_path()
    lines = [
        f"console-proxy {__version__}: the console is at {base}{settings.prefix.rstrip('/')}/ (files from {static})",
        f"rules: {rules} ({holder.rules.template_count} templates), reloaded on SIGHUP and when the file changes",
    ]
    if not decision.enabled:
        lines.append(f"telemetry: off, decided by {decision.source}: nothing is kept and nothing is sent")
        return lines
    lines.append(f"telemetry: on, decided by {decision.source}; mode {settings.mode}")
    if settings.upstream is None:
        events = state_dir_of(settings) / LOCAL_EVENTS_FILE
        lines.append(f"local mode: accepted events are appended to {events}; nothing leaves this machine")
    else:
        lines.append(f"upstream: accepted events are forwarded to {display_url(settings.upstream)}")
        if settings.queue != "sqlite":
            workers = f"{settings.workers} worker processes" if settings.workers > 1 else "one process"
            lines.append(f"queue: the redis stream at {display_queue_url(settings.queue)}, shared; {workers} here")
    lines.append(f"what would be sent, live: {base}/_telemetry/v1/recent")
    return lines


def check_state_dir(state_dir: Path) -> None:
    """Create the state directory and write a file in it; SettingsError (one sentence) when that fails, so an
    unwritable directory is a start-up error of its own rather than a failed lifespan and a traceback."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=state_dir):
            pass
    except OSError as exc:
        raise SettingsError(
            f"the state directory {quote(str(state_dir))} is not writable ({exc.strerror}); "
            "expected a directory this user can create and write (--state-dir)."
        ) from None


def _raise_open_files_limit(max_connections: int) -> None:
    # --max-connections means nothing if the process runs out of descriptors first (a soft limit of 1024 is
    # common): then accept() fails and asyncio logs each failure.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max_connections + OTHER_OPEN_FILES
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


def check_queue(settings: Settings) -> str | None:
    """Exits EXIT_QUEUE when --queue-require-aof is not met by the Redis queue; a line to print when it cannot be
    reached now (not fatal: the proxy is not ready until it can). Each process logs the durability line itself."""
    if settings.queue == "sqlite":
        return None
    with exit_on_settings_error():  # without the redis extra: one sentence saying how to install it
        from console_proxy.delivery.redis.client import REDIS_ERRORS, check_durability, display

    try:
        line, aof = check_durability(settings.queue)
    except REDIS_ERRORS as error:
        return f"redis queue {display(settings.queue)}: unreachable now ({error}); not ready until it is reachable"
    if settings.queue_require_aof and not aof:
        click.echo(f"--queue-require-aof: {line}; refusing to start.", err=True)
        raise SystemExit(EXIT_QUEUE)
    return None


@click.command("serve", short_help="Serve the console with its telemetry anonymized (local file unless --upstream).")
@serve_options
def serve(**options: Any) -> None:
    """Serve the console with its telemetry anonymized; kept in a local file unless --upstream is given."""
    env = os.environ
    with exit_on_settings_error():
        settings = settings_from(options, env)
        decision = resolve_telemetry(settings, env, setting_name=setting_source(options, env, "enable_telemetry"))
        if decision.enabled:
            check_state_dir(state_dir_of(settings))
    try:
        holder = RulesHolder(settings.rules, (settings.prefix,))
    except RulesError as error:
        for line in error.messages:
            click.echo(line, err=True)
        raise SystemExit(EXIT_RULES) from None

    queue_line = check_queue(settings) if decision.enabled and settings.upstream is not None else None

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    websocket = websocket_supported()
    app = create_app(settings, rules_holder=holder, decision=decision, websocket=websocket)
    runtime = app.state.telemetry
    config = server_config(app, settings)
    _raise_open_files_limit(settings.max_connections)
    uvicorn_log = logging.getLogger("uvicorn.error")
    uvicorn_log.addFilter(WithoutRequestLines())
    uvicorn_log.addFilter(Throttled(PER_CONNECTION_LINES))
    try:
        sock = listening_socket(config)
    except SystemExit:
        raise SystemExit(EXIT_SERVER) from None
    host, port = sock.getsockname()[:2]
    host_text = f"[{host}]" if ":" in host else host
    for line in startup_lines(settings, f"http://{host_text}:{port}", decision, holder):
        click.echo(line)
    if not websocket:
        click.echo(NO_WEBSOCKET)
    if queue_line is not None:
        click.echo(queue_line)

    def run_server() -> int:
        server = ProxyServer(config, on_reload=runtime.request_rules_reload)
        # run(), not asyncio.run(serve()): run() makes the event loop config.loop names (uvloop when installed).
        server.run(sockets=[sock])
        return 0 if server.started else EXIT_SERVER

    if settings.workers > 1:
        # Forked after the rules are loaded and the socket is bound, before any lifespan: each worker starts
        # its own runtime (its own forwarder, one consumer of the Redis queue's group).
        raise SystemExit(Supervisor(settings.workers, run_server).run())
    code = run_server()
    if code:
        raise SystemExit(code)

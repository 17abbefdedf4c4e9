"""`console-proxy serve`: the standalone server under uvicorn, with clear start-up lines and signal handling."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

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
from console_proxy.server.config import (
    NO_WEBSOCKET,
    ProxyServer,
    listening_socket,
    raise_open_files_limit,
    server_config,
    websocket_supported,
)
from console_proxy.server.logs import PER_CONNECTION_LINES, Throttled, WithoutRequestLines
from console_proxy.server.supervisor import Supervisor

logger = logging.getLogger("console_proxy")


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
    raise_open_files_limit(settings.max_connections)
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

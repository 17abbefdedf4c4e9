"""`console-proxy serve`: the standalone server under uvicorn, with clear start-up lines and signal handling."""

from __future__ import annotations

import dataclasses
import functools
import logging
import logging.config
import os
import tempfile
from pathlib import Path
from typing import Any

import click
from starlette.types import ASGIApp

from console_proxy._version import __version__
from console_proxy.asgi.app import create_app
from console_proxy.cli.exits import EXIT_OK, EXIT_QUEUE, EXIT_RULES, EXIT_SERVER
from console_proxy.cli.help import GroupedCommand
from console_proxy.cli.options import (
    config_file_of,
    exit_on_settings_error,
    serve_options,
    setting_source,
    settings_from,
    state_dir_of,
)
from console_proxy.cli.status import display_url
from console_proxy.core.errors import ConsoleProxyError, RulesError, SettingsError
from console_proxy.core.settings import Settings
from console_proxy.delivery.local import LOCAL_EVENTS_FILE, lock_writer
from console_proxy.delivery.queue_url import display_queue_url
from console_proxy.delivery.spool.db import lock_spool
from console_proxy.delivery.spool.spool import SPOOL_FILE_NAME
from console_proxy.delivery.upstream_token import readable_by_others
from console_proxy.hasura.cli_config import resolve_telemetry
from console_proxy.hasura.optout import TelemetryDecision, quote
from console_proxy.resources import default_rules_path, default_static_dir
from console_proxy.rules.route_rules import RulesHolder
from console_proxy.server.config import (
    NO_WEBSOCKET,
    ListenError,
    ProxyServer,
    connections_within_open_files,
    listening_socket,
    server_config,
    server_options,
    websocket_supported,
)
from console_proxy.server.logs import logging_config
from console_proxy.server.workers import WorkerConfig, run_workers

logger = logging.getLogger("console_proxy")

NO_IDENTITY = (
    "no installation ID will be attached: every event carries server_uuid null; give --server-uuid UUID, or"
    " --hasura-endpoint URL (with --admin-secret) so that the Hasura server is asked for its ID"
)


def startup_lines(settings: Settings, base: str, decision: TelemetryDecision, holder: RulesHolder) -> list[str]:
    """What a person needs to know once the server listens: where the console is, where events go, and why."""
    static = settings.static or default_static_dir()
    rules = holder.path if holder.path is not None else default_rules_path()
    public = settings.public_url or base
    if settings.hasura_url is not None:
        first = (
            f"console-proxy {__version__}: relaying to Hasura at {display_url(settings.hasura_url)}; its console is"
            f" at {public}/console through the gate, the gate's probes at {base}/_telemetry/v1/healthz|readyz|metrics"
        )
    else:
        first = (
            f"console-proxy {__version__}: the console is at {base}{settings.prefix.rstrip('/')}/ (files from {static})"
        )
    lines = [
        first,
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
        token = settings.upstream_token_file
        lines.append(
            f"upstream token: from {token}, sent as Authorization: Bearer"
            if token is not None
            else "upstream token: none (no --upstream-token-file; for a public collector)"
        )
        if settings.queue != "sqlite":
            workers = f"{settings.workers} worker processes" if settings.workers > 1 else "one process"
            lines.append(f"queue: the redis stream at {display_queue_url(settings.queue)}, shared; {workers} here")
    lines.append(f"what would be sent, live: {base}/_telemetry/v1/recent")
    return lines


def token_warning(settings: Settings) -> str | None:
    """A warning when the upstream token's file may be read by other users than its owner."""
    token = settings.upstream_token_file
    if token is None or not readable_by_others(token):
        return None
    return f"--upstream-token-file {token} may be read by other users; make it readable by its owner only (chmod 600)"


def identity_warning(settings: Settings) -> str | None:
    """A warning when no installation ID can ever be attached: server mode, no --server-uuid, nothing to ask."""
    if settings.mode == "server" and settings.server_uuid is None and settings.hasura_endpoint is None:
        return NO_IDENTITY
    return None


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


def check_writer(settings: Settings) -> None:
    """Exit EXIT_SERVER with one sentence when another process already writes this state directory's events file
    or spool (the server's own sink takes the lock for real as it starts)."""
    state_dir = state_dir_of(settings)
    try:
        if settings.upstream is None:
            os.close(lock_writer(state_dir / LOCAL_EVENTS_FILE))
        elif settings.queue == "sqlite":
            spool = state_dir / SPOOL_FILE_NAME
            try:
                os.close(lock_spool(spool))
            except OSError:
                raise ConsoleProxyError(
                    f"another console-proxy is using the spool {spool}; stop it, or give this one another --state-dir."
                ) from None
    except ConsoleProxyError as error:
        click.echo(str(error), err=True)
        raise SystemExit(EXIT_SERVER) from None


def check_queue(settings: Settings) -> str | None:
    """Exits EXIT_QUEUE when --queue-require-aof is not met by the Redis queue; a line to log when it cannot be
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


def load_rules(settings: Settings) -> RulesHolder:
    """The rules, or exit EXIT_RULES with their FILE:LINE:COL lines on stderr."""
    try:
        return RulesHolder(settings.rules, (settings.prefix,))
    except RulesError as error:
        for line in error.messages:
            click.echo(line, err=True)
        raise SystemExit(EXIT_RULES) from None


def worker_app(settings: Settings, decision: TelemetryDecision, websocket: bool) -> ASGIApp:
    """One worker's app under `--workers N` (made in the worker: its own rules, runtime and forwarder)."""
    return create_app(settings, rules_holder=load_rules(settings), decision=decision, websocket=websocket)


def check_lines(settings: Settings, decision: TelemetryDecision, holder: RulesHolder) -> list[str]:
    """What `serve --check` found good, one line each."""
    lines = [
        f"settings: ok (telemetry {'on' if decision.enabled else 'off'}, decided by {decision.source})",
        f"rules: ok, {holder.path or default_rules_path()} ({holder.rules.template_count} templates)",
    ]
    if decision.enabled:
        lines.append(f"state directory: ok, {state_dir_of(settings)} is writable")
    warning = identity_warning(settings) if decision.enabled else None
    if warning is not None:
        lines.append(f"warning: {warning}")
    return lines


@click.command(
    "serve",
    cls=GroupedCommand,
    short_help="Serve the console with its telemetry anonymized (local file unless --upstream).",
)
@serve_options
@click.option(
    "--check",
    is_flag=True,
    help="Check the settings, the config file, the rules, the state directory and the queue, then exit: 0 all good,"
    " 2 a bad setting, 3 a bad rules file, 4 a Redis without the required appendonly.",
)
def serve(check: bool, **options: Any) -> None:
    """Serve the console with its telemetry anonymized; kept in a local file unless --upstream is given."""
    env = os.environ
    with exit_on_settings_error():
        file = config_file_of(options, env)
        settings = settings_from(options, env, file)
        source = setting_source(options, env, "enable_telemetry", file)
        decision = resolve_telemetry(settings, env, setting_name=source)
        if decision.enabled:
            check_state_dir(state_dir_of(settings))
    holder = load_rules(settings)
    queue_line = check_queue(settings) if decision.enabled and settings.upstream is not None else None
    if check:
        for line in check_lines(settings, decision, holder):
            click.echo(line)
        if queue_line is not None:
            click.echo(f"warning: {queue_line}")
        raise SystemExit(EXIT_OK)
    if decision.enabled:
        check_writer(settings)

    log_config = logging_config(settings.log_format)
    logging.config.dictConfig(log_config)
    websocket = websocket_supported()
    connections, capped = connections_within_open_files(settings.max_connections)
    settings = dataclasses.replace(settings, max_connections=connections)
    try:
        sock = listening_socket(settings.host, settings.port)
    except ListenError as error:
        click.echo(str(error), err=True)
        raise SystemExit(EXIT_SERVER) from None
    host, port = sock.getsockname()[:2]
    host_text = f"[{host}]" if ":" in host else host
    scheme = "https" if settings.ssl_certfile is not None else "http"
    for line in startup_lines(settings, f"{scheme}://{host_text}:{port}", decision, holder):
        logger.info("%s", line)
    for warning in (identity_warning(settings), token_warning(settings)) if decision.enabled else ():
        if warning is not None:
            logger.warning("%s", warning)
    if not websocket:
        logger.error("%s", NO_WEBSOCKET)
    if queue_line is not None:
        logger.warning("%s", queue_line)
    if capped is not None:
        logger.warning("%s", capped)

    if settings.workers > 1:
        # uvicorn's supervisor: each worker builds its own runtime (its forwarder, one consumer of the group).
        build = functools.partial(worker_app, settings, decision, websocket)
        workers = WorkerConfig(build, settings.request_timeout_s, **server_options(settings, log_config))
        raise SystemExit(run_workers(workers, sock))
    app = create_app(settings, rules_holder=holder, decision=decision, websocket=websocket)
    server = ProxyServer(server_config(app, settings, log_config), on_reload=app.state.telemetry.request_reload)
    # run(), not asyncio.run(serve()): run() makes the event loop config.loop names (uvloop when installed).
    server.run(sockets=[sock])
    if not server.started:
        raise SystemExit(EXIT_SERVER)

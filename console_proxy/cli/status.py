"""`console-proxy status`: whether telemetry is on and why, what would be attached, and where events go."""

from __future__ import annotations

import dataclasses
import logging
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio
import click
import httpx

from console_proxy.cli.exits import EXIT_SERVER
from console_proxy.cli.help import GroupedCommand
from console_proxy.cli.options import (
    config_file_of,
    exit_on_settings_error,
    serve_options,
    setting_source,
    settings_from,
    state_dir_of,
)
from console_proxy.cli.proxy_status import proxy_lines
from console_proxy.cli.queue_status import LOCAL_ACCOUNTING, accounting_lines, accounts_of, redis_queue_lines
from console_proxy.core.settings import Settings
from console_proxy.delivery.local import LOCAL_EVENTS_FILE
from console_proxy.delivery.spool.spool import SPOOL_FILE_NAME, read_spool_stats
from console_proxy.hasura.cli_config import resolve_telemetry
from console_proxy.hasura.identity import Identity, IdentityProvider
from console_proxy.hasura.optout import TelemetryDecision

logger = logging.getLogger("console_proxy")

STATUS_LOOKUP_TIMEOUT_S = 3.0
STATUS_PATH = "/_telemetry/v1/status"


def _null(value: str | None) -> str:
    return value if value is not None else "null"


def display_url(url: str) -> str:
    """`url` without user info and with the query elided: either may hold a credential."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "..." if parts.query else "", ""))


@dataclasses.dataclass(frozen=True)
class Lookup:
    """What `serve` would attach, as looked up once, and what went wrong looking."""

    identity: Identity
    cli_config: Path
    problems: list[str]
    sources: dict[str, str | None] = dataclasses.field(default_factory=dict)


def identity_lines(settings: Settings, lookup: Lookup) -> list[str]:
    """What every event would carry, and where it came from."""
    identity = lookup.identity
    if settings.hasura_endpoint is None:
        lines = ["hasura endpoint: none"]
    else:
        trouble = f" ({'; '.join(lookup.problems)})" if lookup.problems else ""
        lines = [f"hasura endpoint: {display_url(settings.hasura_endpoint)}{trouble}"]
    server_from = lookup.sources.get("server_uuid_from")
    if identity.server_uuid is not None and server_from:
        lines.append(f"server_uuid: {identity.server_uuid} (from {server_from})")
    elif settings.mode == "server" and settings.hasura_endpoint is None:
        lines.append("server_uuid: null (no --server-uuid or --hasura-endpoint: no installation ID is attached)")
    else:
        lines.append(f"server_uuid: {_null(identity.server_uuid)}")
    if settings.mode == "cli":
        note = f" (from {lookup.cli_config})" if identity.cli_uuid is not None else ""
        note = note or f" (serve creates one in {lookup.cli_config})"
        lines.append(f"cli_uuid: {_null(identity.cli_uuid)}{note}")
    else:
        lines.append("cli_uuid: null (server mode)")
    lines.append(f"server_version: {_null(identity.server_version)}")
    return lines


def delivery_lines(settings: Settings, state_dir: Path) -> list[str]:
    """Where accepted events go, the spool's depth and the last delivery (the spool is only read)."""
    if settings.upstream is None:
        return [
            f"upstream: local only: {state_dir / LOCAL_EVENTS_FILE}",
            "spool: not in use (local mode)",
            "last delivery: none (local mode)",
            LOCAL_ACCOUNTING,
        ]
    if settings.queue != "sqlite":
        return [f"upstream: {display_url(settings.upstream)}", *redis_queue_lines(settings)]
    path = state_dir / SPOOL_FILE_NAME
    lines = [f"upstream: {display_url(settings.upstream)}"]
    try:
        stats = read_spool_stats(path)
    except sqlite3.Error as error:
        return [*lines, f"spool: {path} cannot be read ({error})", "last delivery: unknown"]
    if stats is None:
        return [*lines, f"spool: empty (no spool file yet at {path})", "last delivery: never", *accounting_lines(())]
    lines.append(
        f"spool: {stats.spooled} events, {stats.spooled_bytes} bytes in {path} "
        f"({stats.accepted} accepted, {stats.forwarded} forwarded, {stats.dead_lettered} dead-lettered, "
        f"{stats.expired} expired)"
    )
    if stats.last_delivery_at is None:
        lines.append("last delivery: never")
    else:
        when = datetime.fromtimestamp(stats.last_delivery_at, UTC).isoformat(timespec="seconds")
        lines.append(f"last delivery: {when.replace('+00:00', 'Z')}")
    return lines + accounting_lines(stats.topics)


def held_lines(settings: Settings, state_dir: Path) -> list[str]:
    """While telemetry is off: what an earlier run left in the spool stays there, unsent (read, never written)."""
    if settings.upstream is None or settings.queue != "sqlite":
        return []
    path = state_dir / SPOOL_FILE_NAME
    try:
        stats = read_spool_stats(path)
    except sqlite3.Error as error:
        return [f"spool: {path} cannot be read ({error})"]
    if stats is None or stats.spooled == 0:
        return []
    return [
        f"spool: {stats.spooled} events kept in {path}, not sent while telemetry is off; sent when it is on again,"
        " unless older than --spool-max-age-s by then"
    ]


def status_lines(settings: Settings, decision: TelemetryDecision, lookup: Lookup | None) -> list[str]:
    """The whole report; `lookup` is None when telemetry is off (nothing is looked up then)."""
    lines = [
        f"enabled: {'yes' if decision.enabled else 'no'}",
        f"decided by: {decision.source}",
        f"mode: {settings.mode}",
    ]
    if lookup is None:
        lines += ["attached: nothing (telemetry is off)", "upstream: none (telemetry is off: nothing is kept or sent)"]
        return lines + held_lines(settings, state_dir_of(settings))
    lines += identity_lines(settings, lookup)
    lines.append(
        "test events: dropped (--drop-test-events)"
        if settings.drop_test_events
        else "test events: kept apart, under the topic console_test"
    )
    lines += delivery_lines(settings, state_dir_of(settings))
    return lines


def lookup_identity(settings: Settings, *, timeout_s: float = STATUS_LOOKUP_TIMEOUT_S) -> Lookup:
    """The identity that `serve` would attach, looked up once; the CLI config is read but never created here."""
    provider = IdentityProvider(settings, timeout_s=timeout_s)
    provider.load_cli_identity(create=False)
    # The problems are printed in the report; without a handler, logging would repeat them on stderr.
    quiet = logging.NullHandler()
    logger.addHandler(quiet)
    try:
        anyio.run(provider.refresh)
    finally:
        logger.removeHandler(quiet)
    return Lookup(provider.current, provider.cli_config_path, provider.problems, provider.sources())


def served_lines(url: str, body: dict[str, Any]) -> list[str]:
    """The report of a running server, from its /_telemetry/v1/status answer."""
    lines = [
        f"server: {display_url(url)}",
        f"enabled: {'yes' if body.get('enabled') else 'no'}",
        f"decided by: {body.get('decided_by')}",
        f"mode: {body.get('mode')}",
    ]
    if not body.get("enabled"):
        return [*lines, f"to turn it on: {body.get('how_to_turn_on')}"]
    identity = body.get("identity") or {}
    lines.append(f"hasura endpoint: {identity.get('hasura_endpoint') or 'none'}")
    for key in ("server_uuid", "cli_uuid"):
        came_from = identity.get(f"{key}_from")
        lines.append(f"{key}: {_null(identity.get(key))}" + (f" (from {came_from})" if came_from else ""))
    lines.append(f"server_version: {_null(identity.get('server_version'))}")
    lines.append(
        "test events: dropped (--drop-test-events)"
        if body.get("test_events") == "dropped"
        else "test events: kept apart, under the topic console_test"
    )
    delivery = body.get("delivery") or {}
    if delivery.get("upstream") is None:
        return [*lines, "upstream: none (local mode: kept in the server's events.jsonl)", LOCAL_ACCOUNTING]
    lines += [f"upstream: {delivery['upstream']}", f"queue: {delivery.get('queue')}"]
    reading = delivery.get("reading") or {}
    if not reading.get("readable"):
        return [*lines, "queue depth: unknown (the server cannot read its queue now)", "last delivery: unknown"]
    lines.append(
        f"queue depth: {reading['events']} events, {reading['bytes']} bytes ({reading['accepted']} accepted,"
        f" {reading['forwarded']} forwarded, {reading['dead_lettered']} dead-lettered, {reading['expired']} expired)"
    )
    last = reading.get("last_delivery_at")
    when = datetime.fromtimestamp(last, UTC).isoformat(timespec="seconds").replace("+00:00", "Z") if last else "never"
    lines.append(f"last delivery: {when}")
    return lines + accounting_lines(accounts_of(reading.get("topics")))


def ask_server(url: str) -> list[str]:
    """What the server at `url` says of itself; exits EXIT_SERVER with one sentence when it cannot be asked."""
    target = url.rstrip("/") + STATUS_PATH
    try:
        response = httpx.get(target, timeout=STATUS_LOOKUP_TIMEOUT_S, trust_env=False)
        body = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError) as error:
        click.echo(
            f"cannot ask console-proxy at {display_url(url)} ({type(error).__name__}); is it running there?", err=True
        )
        raise SystemExit(EXIT_SERVER) from None
    if not isinstance(body, dict):
        click.echo(f"console-proxy at {display_url(url)} answered {response.status_code}, not its status.", err=True)
        raise SystemExit(EXIT_SERVER)
    return served_lines(url, body)


@click.command(
    "status",
    cls=GroupedCommand,
    short_help="Whether telemetry is on and why, what is attached, where events go, queue depth.",
)
@serve_options
@click.option(
    "--url",
    "url",
    default=None,
    metavar="URL",
    help="Ask the server running at URL (http://127.0.0.1:9695) instead of reading these flags: what it decided,"
    " attaches and queues now.",
)
def status(url: str | None, **options: object) -> None:
    """Whether telemetry is on and which setting decided it, the mode, what would be attached to every event
    (and where each ID comes from), whether test-build events are kept, where events go, and the queue's depth,
    counters and last delivery (read without writing). Takes the same flags and CONSOLE_PROXY_<FLAG> variables as
    `serve`; with --url, asks the running server instead."""
    if url is not None:
        for line in ask_server(url):
            click.echo(line)
        return
    env = os.environ
    with exit_on_settings_error():
        file = config_file_of(options, env)
        settings = settings_from(options, env, file)
        source = setting_source(options, env, "enable_telemetry", file)
        decision = resolve_telemetry(settings, env, setting_name=source)
        lookup = lookup_identity(settings) if decision.enabled else None
    for line in [*status_lines(settings, decision, lookup), *proxy_lines(settings)]:
        click.echo(line)

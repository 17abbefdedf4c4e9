"""`console-proxy status`: whether telemetry is on and why, what would be attached, and where events go."""

from __future__ import annotations

import dataclasses
import logging
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import anyio
import click

from console_proxy.cli.options import (
    exit_on_settings_error,
    serve_options,
    setting_source,
    settings_from,
    state_dir_of,
)
from console_proxy.cli.queue_status import redis_queue_lines
from console_proxy.core.settings import Settings
from console_proxy.delivery.local import LOCAL_EVENTS_FILE
from console_proxy.delivery.spool.spool import SPOOL_FILE_NAME, read_spool_stats
from console_proxy.hasura.cli_config import resolve_telemetry
from console_proxy.hasura.identity import Identity, IdentityProvider
from console_proxy.hasura.optout import TelemetryDecision

logger = logging.getLogger("console_proxy")

STATUS_LOOKUP_TIMEOUT_S = 3.0


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


def identity_lines(settings: Settings, lookup: Lookup) -> list[str]:
    """What every event would carry, and where it came from."""
    identity = lookup.identity
    if settings.hasura_endpoint is None:
        lines = ["hasura endpoint: none"]
    else:
        trouble = f" ({'; '.join(lookup.problems)})" if lookup.problems else ""
        lines = [f"hasura endpoint: {display_url(settings.hasura_endpoint)}{trouble}"]
    lines.append(f"server_uuid: {_null(identity.server_uuid)}")
    if settings.mode == "cli":
        note = "" if identity.cli_uuid is not None else f" (serve creates one in {lookup.cli_config})"
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
        return [*lines, f"spool: empty (no spool file yet at {path})", "last delivery: never"]
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
    return lines


def status_lines(settings: Settings, decision: TelemetryDecision, lookup: Lookup | None) -> list[str]:
    """The whole report; `lookup` is None when telemetry is off (nothing is looked up then)."""
    lines = [
        f"enabled: {'yes' if decision.enabled else 'no'}",
        f"decided by: {decision.source}",
        f"mode: {settings.mode}",
    ]
    if lookup is None:
        lines += ["attached: nothing (telemetry is off)", "upstream: none (telemetry is off: nothing is kept or sent)"]
        return lines
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
    return Lookup(provider.current, provider.cli_config_path, provider.problems)


@click.command("status", short_help="Whether telemetry is on and why, what is attached, where events go, queue depth.")
@serve_options
def status(**options: object) -> None:
    """Whether telemetry is on and which setting decided it, the mode, what would be attached to every event,
    whether test-build events are kept, where events go, and the queue's depth, counters and last delivery
    (read without writing). Takes the same flags and CONSOLE_PROXY_<FLAG> variables as `serve`."""
    env = os.environ
    with exit_on_settings_error():
        settings = settings_from(options, env)
        decision = resolve_telemetry(settings, env, setting_name=setting_source(options, env, "enable_telemetry"))
        lookup = lookup_identity(settings) if decision.enabled else None
    for line in status_lines(settings, decision, lookup):
        click.echo(line)

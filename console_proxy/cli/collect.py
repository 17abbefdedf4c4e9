"""`console-proxy collect`: the receiving end under uvicorn; `collect erase` and `collect export` on its store."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any

import click

from console_proxy._version import __version__
from console_proxy.cli.exits import EXIT_CONFIG, EXIT_RULES, EXIT_SERVER

_MISSING_EXTRA = (
    "console-proxy collect needs the collector extra (duckdb, psycopg); install it with "
    "pip install 'console-proxy[collector]'."
)
EXIT_STORE = 1

logger = logging.getLogger("console_proxy")

_HELP = {
    "host": ("HOST", "Address to listen on.", "127.0.0.1"),
    "port": ("PORT", "Port to listen on (0: any free port).", "9696"),
    "store": (
        "URL",
        "duckdb:///PATH (one process) or postgresql://USER@HOST:PORT/DB (several collectors).",
        "duckdb:///<state-dir>/collector.duckdb",
    ),
    "rules": (
        "FILE",
        "Rules file whose vocabulary every row must keep (the gate's route_rules.yaml).",
        "the route_rules.yaml shipped with console-proxy",
    ),
    "min_installations": ("N", "The dashboard shows no figure that fewer installations stand for.", "5"),
    "token_file": (
        "FILE",
        "Bearer tokens, one a line (# comments): then POST /v1/batches needs one.",
        "none: the collector is public",
    ),
    "retention_days": ("DAYS", "Rows older than this are deleted, at start and every hour.", "none: kept"),
    "state_dir": (
        "DIR",
        "Where the default DuckDB file lives; created when missing.",
        "$XDG_STATE_HOME/console-proxy or ~/.local/state/console-proxy",
    ),
    "max_body_bytes": ("BYTES", "Largest batch body read; beyond it 413.", "8388608"),
    "max_batch_events": ("N", "Most events in one batch; beyond it 413.", "5000"),
}


def _option(field: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    from console_proxy.collector.settings import env_of, flag_of

    metavar, text, default = _HELP[field]
    return click.option(
        flag_of(field),
        field,
        type=str,
        default=None,
        metavar=metavar,
        help=f"{text} Default: {default}. Env: {env_of(field)}.",
    )


def _options(*fields: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        for field in reversed(fields):
            function = _option(field)(function)
        return function

    return decorate


def _settings(options: dict[str, Any]) -> Any:
    try:
        from console_proxy.collector.house import SettingsError
        from console_proxy.collector.settings import collect_settings
    except ImportError:
        click.echo(_MISSING_EXTRA, err=True)
        raise SystemExit(EXIT_CONFIG) from None
    try:
        return collect_settings(options, os.environ)
    except SettingsError as error:
        click.echo(str(error), err=True)
        raise SystemExit(EXIT_CONFIG) from None


def _open(url: str) -> Any:
    from console_proxy.collector.store import StoreUnavailableError, open_store

    try:
        store = open_store(url)
        store.create_tables()
    except StoreUnavailableError as error:
        click.echo(f"{error}; expected a store this collector can open and write.", err=True)
        raise SystemExit(EXIT_STORE) from None
    return store


@click.group("collect", invoke_without_command=True, short_help="Run the receiving end: store the gate's batches.")
@_options(*_HELP)
@click.pass_context
def collect(ctx: click.Context, /, **options: Any) -> None:
    """Take the gate's batches at POST /v1/batches, store each event once, and show a dashboard at /."""
    if ctx.invoked_subcommand is not None:
        return
    settings = _settings(options)
    _serve(settings)


def _server(config: Any) -> Any:
    import asyncio
    import contextlib
    import signal
    import threading
    from collections.abc import Iterator

    import uvicorn

    class CollectServer(uvicorn.Server):
        """uvicorn's server with SIGINT and SIGTERM as a clean stop (exit 0), not re-raised after shutdown."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self.handle_exit, sig, None)
            try:
                yield
            finally:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)

    return CollectServer(config)


def _serve(settings: Any) -> None:
    import uvicorn

    from console_proxy.collector.app import CollectorApp, CollectorConfig
    from console_proxy.collector.house import RulesError, SettingsError, load_rules
    from console_proxy.collector.tokens import read_tokens
    from console_proxy.collector.vocabulary import vocabulary_of

    try:
        rules = load_rules(settings.rules)
    except RulesError as error:
        for line in error.messages:
            click.echo(line, err=True)
        raise SystemExit(EXIT_RULES) from None
    try:
        tokens = read_tokens(settings.token_file) if settings.token_file is not None else None
    except SettingsError as error:
        click.echo(str(error), err=True)
        raise SystemExit(EXIT_CONFIG) from None
    config = CollectorConfig(
        vocabulary=vocabulary_of(rules),
        min_installations=settings.min_installations,
        tokens=tokens,
        retention_days=settings.retention_days,
        max_body_bytes=settings.max_body_bytes,
        max_events=settings.max_batch_events,
    )
    store = _open(settings.store)
    app = CollectorApp(config, lambda: store)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    uconfig = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        lifespan="on",
        access_log=False,
        server_header=False,
        log_level="warning",
        timeout_graceful_shutdown=5,
    )
    try:
        sock = uconfig.bind_socket()
    except SystemExit:
        store.close()
        raise SystemExit(EXIT_SERVER) from None
    host, port = sock.getsockname()[:2]
    base = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    lines = [
        f"console-proxy collect {__version__}: taking batches at {base}/v1/batches",
        f"store: {store.description}",
        f"rules: {rules.source} ({rules.template_count} templates): rows outside their vocabulary go to bad_rows",
        f"dashboard: {base}/ (no figure of fewer than {settings.min_installations} installations)",
        f"tokens: {len(tokens)} from {settings.token_file}; POST /v1/batches needs Authorization: Bearer"
        if tokens
        else "tokens: none; the collector is public",
        f"retention: rows older than {settings.retention_days} days are deleted, at start and hourly"
        if settings.retention_days
        else "retention: none; rows are kept until erased",
    ]
    for line in lines:
        click.echo(line)
    server = _server(uconfig)
    server.run(sockets=[sock])
    if not server.started:
        raise SystemExit(EXIT_SERVER)


@collect.command("erase")
@click.option("--installation", required=True, metavar="UUID", help="The server or CLI UUID whose rows to delete.")
@_options("store", "state_dir")
def erase(installation: str, **options: Any) -> None:
    """Delete every row of one installation (its events and the bad rows that name it) and say how many."""
    settings = _settings(options)
    from console_proxy.collector.house import valid_uuid

    uuid = valid_uuid(installation.strip())
    if uuid is None:
        click.echo(
            f'--installation is "{installation}"; expected a UUID such as "11111111-2222-4333-8444-555555555555".',
            err=True,
        )
        raise SystemExit(EXIT_CONFIG)
    store = _open(settings.store)
    try:
        counts = store.erase(uuid)
    finally:
        store.close()
    detail = ", ".join(f"{table} {n}" for table, n in counts.items())
    click.echo(f"erased {sum(counts.values())} rows of installation {uuid} ({detail})")


@collect.command("export")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["parquet", "csv"]),
    default="parquet",
    show_default=True,
    help="File format, one file per table.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False),
    default="collector-export",
    show_default=True,
    help="Directory to write TABLE.parquet or TABLE.csv into; created when missing.",
)
@_options("store", "state_dir")
def export(fmt: str, out: str, **options: Any) -> None:
    """Write every table of the store to files that any tool reads."""
    from pathlib import Path

    settings = _settings(options)
    store = _open(settings.store)
    try:
        written = store.export(fmt, Path(out))
    finally:
        store.close()
    for path in written:
        click.echo(str(path))

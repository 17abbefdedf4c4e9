"""`console-proxy dead-letters list|replay|purge`: the events a collector refused for good, in the spool."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from console_proxy.cli.exits import EXIT_NO_QUEUE, EXIT_NOT_CONFIRMED
from console_proxy.cli.options import env_of, exit_on_settings_error, settings_from, state_dir_of
from console_proxy.delivery.spool.dead_letters import (
    DeadLetter,
    list_dead_letters,
    purge_dead_letters,
    replay_dead_letters,
)
from console_proxy.delivery.spool.spool import SPOOL_FILE_NAME

EXIT_SPOOL_BUSY = 1


def _spool_path(state_dir: str | None) -> Path:
    env = os.environ
    with exit_on_settings_error():
        settings = settings_from({"state_dir": state_dir}, env)
    return state_dir_of(settings) / SPOOL_FILE_NAME


def _state_dir_option(function: Callable[..., Any]) -> Callable[..., Any]:
    function = click.option(
        "--queue",
        "queue",
        type=str,
        default=None,
        metavar="sqlite|URL",
        help=(
            "The queue, as given to serve (a redis:// URL: its dead-letter stream). Default: sqlite."
            f" Env: {env_of('queue')}."
        ),
    )(function)
    return click.option(
        "--state-dir",
        "state_dir",
        type=str,
        default=None,
        metavar="DIR",
        help=(
            "The state directory of the spool, as given to serve. Default: $XDG_STATE_HOME/console-proxy or"
            f" ~/.local/state/console-proxy. Env: {env_of('state_dir')}."
        ),
    )(function)


def _redis_url(queue: str | None) -> str | None:
    """The Redis queue's URL when one is given (flag or environment), else None (the spool)."""
    env = os.environ
    with exit_on_settings_error():
        # A Redis queue needs --upstream; any will do to check the URL, which is all that is read here.
        settings = settings_from({"queue": queue, "upstream": "http://127.0.0.1/"}, env)
    return None if settings.queue == "sqlite" else settings.queue


@click.group("dead-letters", short_help="List, replay or purge the events a collector refused for good.")
def dead_letters() -> None:
    """Events a collector refused for good (a 4xx but 408 and 429; a 413 for a single event): list, replay, purge.

    With the SQLite spool, replay and purge take its lock: stop `console-proxy serve` first. On a Redis
    queue (--queue redis://...) all three work while serving.
    """


@dead_letters.command("list", short_help="One line per dead letter: when, status, event id, type and route.")
@_state_dir_option
def list_command(state_dir: str | None, queue: str | None) -> None:
    """One line per dead letter, oldest first: when, the collector's status, event id, type and route."""
    letters, where = _letters(state_dir, queue)
    _print(letters)
    click.echo(f"{len(letters)} dead {'letter' if len(letters) == 1 else 'letters'} in {where}", err=True)


def _letters(state_dir: str | None, queue: str | None) -> tuple[list[DeadLetter], str]:
    """The dead letters and where they are; exits EXIT_NO_QUEUE, saying so, when there is no queue there at all
    (a mistyped --state-dir or --queue would otherwise read as "0 dead letters")."""
    url = _redis_url(queue)
    if url is not None:
        from console_proxy.delivery.redis.dead_letters import list_redis_dead_letters, queue_exists

        if not queue_exists(url):
            click.echo(f"no queue in {redis_display(url)}: nothing was ever queued there; is --queue right?", err=True)
            raise SystemExit(EXIT_NO_QUEUE)
        return list_redis_dead_letters(url), redis_display(url)
    path = _spool_path(state_dir)
    if not path.exists():
        click.echo(f"no spool at {path}: nothing was ever queued there; is --state-dir the one serve uses?", err=True)
        raise SystemExit(EXIT_NO_QUEUE)
    return list_dead_letters(path), str(path)


def _print(letters: list[DeadLetter]) -> None:
    for letter in letters:
        when = datetime.fromtimestamp(letter.dead_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        click.echo(f"{when} {letter.status} {letter.event_id} {letter.event_type} {letter.url}")


def redis_display(url: str) -> str:
    from console_proxy.delivery.redis.client import display

    return f"the redis queue at {display(url)}"


def _change(action: Callable[[Path], int], state_dir: str | None, done: str, queue: str | None = None) -> None:
    url = _redis_url(queue)
    if url is not None:
        from console_proxy.delivery.redis.dead_letters import change_redis_dead_letters

        count = change_redis_dead_letters(url, replay=action is replay_dead_letters)
        click.echo(f"{done} {count} dead {'letter' if count == 1 else 'letters'} in {redis_display(url)}")
        return
    path = _spool_path(state_dir)
    try:
        count = action(path)
    except OSError as exc:
        click.echo(f"cannot change the spool {path}: {exc.strerror or exc}; stop console-proxy serve first.", err=True)
        raise SystemExit(EXIT_SPOOL_BUSY) from None
    click.echo(f"{done} {count} dead {'letter' if count == 1 else 'letters'} in {path}")


@dead_letters.command("replay", short_help="Put every dead letter back in the queue with its original ids.")
@_state_dir_option
def replay_command(state_dir: str | None, queue: str | None) -> None:
    """Put every dead letter back in the queue with its original event id; the next serve sends them."""
    _change(replay_dead_letters, state_dir, "put back in the queue:", queue)


@dead_letters.command("purge", short_help="Delete every dead letter (asks first; --yes, --dry-run).")
@_state_dir_option
@click.option("--yes", "yes", is_flag=True, help="Purge without asking.")
@click.option("--dry-run", "dry_run", is_flag=True, help="List what would be purged and change nothing.")
def purge_command(state_dir: str | None, queue: str | None, yes: bool, dry_run: bool) -> None:
    """Delete every dead letter, after asking (or with --yes); --dry-run lists them and deletes nothing."""
    letters, where = _letters(state_dir, queue)
    count = f"{len(letters)} dead {'letter' if len(letters) == 1 else 'letters'}"
    if dry_run:
        _print(letters)
        click.echo(f"would purge {count} in {where} (--dry-run: nothing changed)", err=True)
        return
    if letters and not yes:
        try:
            confirmed = click.confirm(f"Delete {count} in {where} for good?", err=True)
        except click.Abort:  # no terminal to answer (stdin closed): never delete unasked
            click.echo(err=True)  # ends the question's line
            confirmed = False
        if not confirmed:
            click.echo(f"nothing purged; give --yes to purge {count} without asking.", err=True)
            raise SystemExit(EXIT_NOT_CONFIRMED)
    _change(purge_dead_letters, state_dir, "purged:", queue)

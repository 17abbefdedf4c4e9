"""`console-proxy rules check|test`: work on a rules file from the command line."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from console_proxy.errors import RulesError
from console_proxy.rules.route_rules import RouteRules, load_rules

_FILE = click.Path(dir_okay=False, path_type=Path)


def _load_or_exit(path: Path | None, prefixes: tuple[str, ...] = ()) -> RouteRules:
    try:
        return load_rules(path, prefixes=prefixes)
    except RulesError as exc:
        for line in exc.messages:
            click.echo(line, err=True)
        sys.exit(1)


@click.group("rules")
def rules() -> None:
    """Check and try route rules, the file that anonymizes console routes (format: docs/rules.md).

    \b
    console-proxy rules check route_rules.yaml
    console-proxy rules test /console/data/db/schema/public/tables/users/browse
    grep -o '/console/[^ "]*' access.log | console-proxy rules test
    """


@rules.command("check", short_help="Check a rules file: a summary and exit 0, or its errors and exit 1.")
@click.argument("file", required=False, type=_FILE)
def check_command(file: Path | None) -> None:
    """Check a rules file (default: the one shipped with console-proxy).

    Exits 0 and prints a one-line summary when FILE is good; exits 1 and prints one
    FILE:LINE:COL: message line per problem on stderr when it is not.
    """
    loaded = _load_or_exit(file)
    name = str(file) if file is not None else loaded.source
    parts = [
        _count(loaded.template_count, "template"),
        _count(len(loaded.prefixes), "prefix", "prefixes"),
        _count(loaded.drop_count, "dropped action pattern"),
    ]
    if loaded.allow_count is not None:
        parts.append(f"allowlist mode with {_count(loaded.allow_count, 'allowed pattern')}")
    click.echo(f"{name}: ok, " + ", ".join(parts))


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


@rules.command("test", short_help="Anonymize URLs from the arguments or stdin, one line out per line in.")
@click.option(
    "--rules",
    "rules_file",
    type=_FILE,
    default=None,
    metavar="FILE",
    help="Rules file to use (default: the one shipped with console-proxy).",
)
@click.option(
    "--prefix",
    "prefixes",
    multiple=True,
    metavar="P",
    help="Another URL prefix to strip, such as /hasura/console; repeat for more.",
)
@click.argument("urls", nargs=-1)
def try_command(rules_file: Path | None, prefixes: tuple[str, ...], urls: tuple[str, ...]) -> None:
    """Print the anonymized form of each URL, one line out per URL in, in the same order.

    With no URL arguments, reads one URL per line from stdin and answers each line as soon as it is
    read, so it works in a pipe over a log file:

        grep -o '/console/[^ "]*' access.log | console-proxy rules test

    A route no template matches prints the unknown token (/UNKNOWN by default); a blank line is the
    index page, /, as the console sends its index page as an empty route.
    """
    loaded = _load_or_exit(rules_file, prefixes)
    if urls:
        for url in urls:
            click.echo(loaded.anonymize(url))
        return
    while line := sys.stdin.readline():  # readline, not iteration: answer each line before the next arrives
        click.echo(loaded.anonymize(line.rstrip("\r\n")))  # click.echo flushes

"""`console-proxy rules check|test`: work on a rules file from the command line."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import click

from console_proxy.cli.exits import EXIT_RULES_CHECK
from console_proxy.core.errors import RulesError
from console_proxy.core.settings import resolve_state_dir
from console_proxy.delivery.unknowns import read_unknowns, unknowns_path
from console_proxy.rules.actions import CONSTANT_SHAPE, DROPPED
from console_proxy.rules.route_rules import RouteRules, load_rules
from console_proxy.rules.suggest import suggest_allow, suggest_routes
from console_proxy.sources import cli as cli_source
from console_proxy.sources import server as server_source

_FILE = click.Path(dir_okay=False, path_type=Path)


def _load_or_exit(path: Path | None, prefixes: tuple[str, ...] = ()) -> RouteRules:
    try:
        return load_rules(path, prefixes=prefixes)
    except RulesError as exc:
        for line in exc.messages:
            click.echo(line, err=True)
        sys.exit(EXIT_RULES_CHECK)


@click.group("rules", short_help="Check route_rules.yaml, and try it on URLs, CLI commands or server messages.")
def rules() -> None:
    """Check and try route rules, the file that anonymizes console routes (format: docs/rules.md).

    \b
    console-proxy rules check route_rules.yaml
    console-proxy rules test /console/data/db/schema/public/tables/users/browse
    grep -o '/console/[^ "]*' access.log | console-proxy rules test
    console-proxy rules test --source cli 'hasura migrate apply --endpoint https://example --version 12'
    console-proxy rules test --source server < server-metrics.jsonl
    printf 'Data/SET_TABLE\nData/SET_ALICE_AT_CORP_COM\n' | console-proxy rules test --actions
    console-proxy rules suggest > proposed.yaml
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
    if loaded.action_shape is not None:
        parts.append(f"action names shaped like {loaded.action_shape!r}")
    if loaded.allow_count is not None:
        parts.append(f"allowlist mode with {_count(loaded.allow_count, 'allowed pattern')}")
    else:
        parts.append(f"no allow list: every action name leaves as {loaded.unknown_action}")
    parts += [_count(loaded.server.metric_count, "server count"), _count(len(loaded.cli.commands), "CLI command")]
    click.echo(f"{name}: ok, " + ", ".join(parts))


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def _try_cli(rules: RouteRules, line: str) -> str:
    if line.lstrip().startswith("{"):
        try:
            report = cli_source.parse_cli(json.loads(line), rules.cli)
        except (ValueError, RecursionError):  # invalid JSON, ShapeError
            return "REFUSED"
        kept = dataclasses.asdict(report)
        del kept["dropped_fields"]
        return json.dumps(kept, separators=(",", ":"))
    path, flags = cli_source.parse_command(line, rules.cli, Counter())
    return " ".join([path, *(f"--{flag}" for flag in flags)])


def _try_server(rules: RouteRules, line: str) -> str:
    try:
        report = server_source.parse_server(json.loads(line), rules.server)
    except (ValueError, RecursionError):  # invalid JSON, ShapeError
        return "REFUSED"
    kept = dataclasses.asdict(report)
    del kept["dropped_fields"]
    if kept["ci"] is None:  # as in the event: ci only when the server sent one
        del kept["ci"]
    return json.dumps(kept, separators=(",", ":"))


# What `rules test --actions` prints for a name on the drop list: no action name has this shape.
DROPPED_MARK = "(dropped)"


def _try_action(rules: RouteRules, line: str) -> str:
    outcome, sent = rules.classify_action(line)
    return DROPPED_MARK if outcome == DROPPED or sent is None else sent


_TRY: dict[str, Callable[[RouteRules, str], str]] = {
    "console": lambda rules, line: rules.anonymize(line),
    "cli": _try_cli,
    "server": _try_server,
}


@rules.command("test", short_help="Show what leaves of each input (a URL by default), one line out per line in.")
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
@click.option(
    "--source",
    type=click.Choice(sorted(_TRY)),
    default="console",
    show_default=True,
    help="What the inputs are: console URLs, CLI commands (or CLI events as JSON), server messages as JSON.",
)
@click.option(
    "--actions",
    is_flag=True,
    help="The inputs are console action names: prints each name kept, the unknown token, or (dropped).",
)
@click.argument("inputs", nargs=-1, metavar="[INPUT]...")
def try_command(
    rules_file: Path | None, prefixes: tuple[str, ...], source: str, actions: bool, inputs: tuple[str, ...]
) -> None:
    """Print what leaves of each input, one line out per input in, in the same order.

    \b
    --source console (default): each input is a URL; prints its anonymized route.
    --source cli: each input is a command as the Hasura CLI reports it, or a command line
      ("hasura migrate apply --endpoint https://example"); prints the known command path and the
      known flag names (UNKNOWN for a path the rules do not list). An input starting with { is a
      CLI event as JSON; prints the fields kept of it.
    --source server: each input is one server message as JSON; prints the fields kept of it.
    A message that is not one at all prints REFUSED.
    --actions: each input is an action name; prints the name when it leaves as it is, the unknown
      token (UNKNOWN by default) when no allow entry matches it, (dropped) when the drop list has it.

    With no INPUT arguments, reads one input per line from stdin and answers each line as soon as it
    is read, so it works in a pipe over a log file:

        grep -o '/console/[^ "]*' access.log | console-proxy rules test

    A route no template matches prints the unknown token (/UNKNOWN by default); a blank line is the
    index page, /, as the console sends its index page as an empty route.
    """
    loaded = _load_or_exit(rules_file, prefixes)
    answer = _try_action if actions else _TRY[source]
    if inputs:
        for item in inputs:
            click.echo(answer(loaded, item))
        return
    while line := sys.stdin.readline():  # readline, not iteration: answer each line before the next arrives
        click.echo(answer(loaded, line.rstrip("\r\n")))  # click.echo flushes


@rules.command("suggest", short_help="Propose route templates and allow entries from serve --learn-unknown's file.")
@click.option(
    "--file",
    "file",
    type=_FILE,
    default=None,
    metavar="F",
    help="The file of unknown routes and names (default: unknowns.jsonl in the state directory).",
)
@click.option("--rules", "rules_file", type=_FILE, default=None, metavar="FILE", help="Rules file in force.")
@click.option("--prefix", "prefixes", multiple=True, metavar="P", help="Another URL prefix to strip; repeatable.")
def suggest_command(file: Path | None, rules_file: Path | None, prefixes: tuple[str, ...]) -> None:
    """Print, as YAML to review and paste into the rules file, route templates for the raw routes that left
    as the unknown route and `allow` entries for the action names that left as the unknown token.

    A position where more than a few distinct values were seen, or a value that is not a lower-case word
    (ids, numbers, names), becomes a parameter; nothing from FILE is sent anywhere.
    """
    loaded = _load_or_exit(rules_file, prefixes)
    path = file if file is not None else unknowns_path(resolve_state_dir(None, os.environ))
    try:
        raw_routes, raw_actions = read_unknowns(path)
    except OSError as exc:
        click.echo(f"{path}: cannot be read ({exc.strerror}); run serve --learn-unknown true first", err=True)
        sys.exit(EXIT_RULES_CHECK)
    segment_lists = [segs for segs in (loaded.segments(r) for r in raw_routes) if segs is not None]
    routes = suggest_routes(segment_lists, loaded.parameter_at)
    shape = loaded.actions.shape or CONSTANT_SHAPE
    allow = suggest_allow(raw_actions, shape, loaded.action_known)
    click.echo(f"# Proposed by console-proxy rules suggest from {len(raw_routes)} routes and")
    click.echo(f"# {len(raw_actions)} action names in {path}. Review every line before pasting it.")
    click.echo("routes:" if routes else "routes: []")
    for route in routes:
        seen = ", ".join(f"{name}: {n} values" for name, n in route.distinct)
        click.echo(f"  - {route.template}    # {_count(route.routes, 'route')}" + (f"; {seen}" if seen else ""))
    left_out = len(set(raw_actions)) - len(allow)
    click.echo("actions:")
    click.echo(f"  # {_count(left_out, 'name')} not shaped like an action constant, or already known, left out")
    click.echo("  allow:" if allow else "  allow: []")
    for name in allow:
        click.echo(f"    - '{name}'")

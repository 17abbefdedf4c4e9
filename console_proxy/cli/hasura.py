"""`console-proxy hasura [--gate URL] [--hasura-bin PATH] -- ARGS...`: the real Hasura CLI with its own telemetry
off, the command recorded through the gate (docs/design.md, "The CLI's commands")."""

from __future__ import annotations

import os
import shutil
import sys
from urllib.parse import urlsplit

import click

from console_proxy.cli.exits import EXIT_CANNOT_RUN, EXIT_CONFIG, EXIT_NOT_FOUND
from console_proxy.core.settings import DEFAULT_HOST, DEFAULT_PORT
from console_proxy.hasura import wrapper

DEFAULT_GATE = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"


@click.command(
    "hasura",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
    short_help="Run the Hasura CLI with its telemetry off; record the command through the gate.",
)
@click.option(
    "--gate",
    metavar="URL",
    default=DEFAULT_GATE,
    show_default=True,
    help="The gate that records the command (a `console-proxy serve`); when it is down the command is not recorded.",
)
@click.option(
    "--hasura-bin",
    metavar="PATH",
    default=None,
    help="The real Hasura CLI.  [default: hasura, found on PATH]",
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def hasura(gate: str, hasura_bin: str | None, args: tuple[str, ...]) -> None:
    """Run the Hasura CLI with ARGS, with its own telemetry off (HASURA_GRAPHQL_ENABLE_TELEMETRY=false), and
    record the command (its path, the names of the flags set, whether it failed, OS, architecture, CLI version;
    never a value or an argument) through the gate afterwards, in the background. Its input, output, signals and
    exit status are the CLI's own; a gate that is down changes nothing. Put `--` before the CLI's own arguments:

        alias hasura='console-proxy hasura --gate http://127.0.0.1:9695 --'
    """
    parts = urlsplit(gate.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        click.echo(f"--gate is {gate!r}; expected an http:// or https:// URL with a host.", err=True)
        raise SystemExit(EXIT_CONFIG)
    name = hasura_bin or "hasura"
    executable = shutil.which(name)
    if executable is None:
        where = "" if hasura_bin else " on PATH"
        click.echo(
            f"console-proxy hasura: {name!r} was not found{where}; give the real CLI with --hasura-bin.", err=True
        )
        raise SystemExit(EXIT_NOT_FOUND)
    try:
        code = wrapper.run(executable, args, wrapper.cli_environment(os.environ))
    except OSError as error:
        click.echo(f"console-proxy hasura: {executable!r} cannot be run ({error.strerror}).", err=True)
        raise SystemExit(EXIT_CANNOT_RUN) from None
    sys.stdout.flush()
    wrapper.record_in_background(gate, executable, args, code)
    raise SystemExit(wrapper.exit_like(code))

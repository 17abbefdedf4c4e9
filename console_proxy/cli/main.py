"""The `console-proxy` command line: a click group; each subcommand lives in its own module."""

from __future__ import annotations

import click

from console_proxy._version import __version__
from console_proxy.cli.collect import collect
from console_proxy.cli.dead_letters import dead_letters
from console_proxy.cli.rules import rules
from console_proxy.cli.serve import serve
from console_proxy.cli.status import status


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="console-proxy")
def main() -> None:
    """A privacy gate for a React-Redux console's usage telemetry.

    Run `console-proxy serve` to serve the console with telemetry anonymized (kept local unless
    --upstream is given), `console-proxy rules check|test` to work on route_rules.yaml,
    `console-proxy status` to see whether telemetry is on and why and how deep the queue is, and
    `console-proxy dead-letters list|replay|purge` for the events a collector refused.
    """


main.add_command(dead_letters)
main.add_command(rules)
main.add_command(serve)
main.add_command(status)
main.add_command(collect)

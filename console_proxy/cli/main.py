"""The `console-proxy` command line: a click group; each subcommand lives in its own module, imported only when it
runs (or for `--help`), so that `console-proxy hasura -- ...`, run before every CLI command, starts fast."""

from __future__ import annotations

import importlib

import click

from console_proxy._version import __version__

# Each command: the module that holds it, and its name there.
COMMANDS = {
    "collect": ("console_proxy.cli.collect", "collect"),
    "dead-letters": ("console_proxy.cli.dead_letters", "dead_letters"),
    "hasura": ("console_proxy.cli.hasura", "hasura"),
    "rules": ("console_proxy.cli.rules", "rules"),
    "serve": ("console_proxy.cli.serve", "serve"),
    "status": ("console_proxy.cli.status", "status"),
    "tls": ("console_proxy.cli.tls", "tls"),
}


class LazyGroup(click.Group):
    """A group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        home = COMMANDS.get(cmd_name)
        if home is None:
            return None
        command = getattr(importlib.import_module(home[0]), home[1])
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="console-proxy")
def main() -> None:
    """A privacy gate for a React-Redux console's usage telemetry.

    Run `console-proxy serve` to serve the console with telemetry anonymized (kept local unless
    --upstream is given, relayed to a Hasura server with --hasura-url), `console-proxy rules check|test` to work
    on route_rules.yaml, `console-proxy status` to see whether telemetry is on and why and how deep the queue is,
    `console-proxy dead-letters list|replay|purge` for the events a collector refused, `console-proxy hasura --
    ARGS...` to run the Hasura CLI through the gate, and `console-proxy tls make-ca|make-cert` for the certificate
    a host alias of telemetry.hasura.io needs.
    """

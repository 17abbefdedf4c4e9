"""`serve --help` and `status --help` in groups: the flags' table (cli/flags.py) stays in its order, and each group
lists its flags in that order; a flag no group names is listed under "Other", so none is ever left out."""

from __future__ import annotations

import click

from console_proxy.cli.flags import OPTIONS
from console_proxy.cli.values import flag_of

# (title, fields): the groups of docs/flags.md, in the order --help shows them.
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Serving",
        (
            "config",
            "url",
            "host",
            "port",
            "static",
            "prefix",
            "workers",
            "log_format",
            "ssl_certfile",
            "ssl_keyfile",
            "check",
            "help",
        ),
    ),
    ("Rules", ("rules", "drop_test_events", "learn_unknown")),
    (
        "Where events go",
        ("upstream", "upstream_token_file", "state_dir", "queue", "queue_lease_s", "queue_require_aof"),
    ),
    (
        "Identity and opt-out",
        ("mode", "hasura_endpoint", "admin_secret", "server_uuid", "cli_config", "enable_telemetry"),
    ),
    ("Identity lookups", ("identity_refresh_s", "identity_trust_env")),
    (
        "Queue bounds and delivery",
        (
            "spool_max_events",
            "spool_max_bytes",
            "spool_max_age_s",
            "batch_max_events",
            "batch_max_delay_s",
            "upstream_timeout_s",
            "retry_base_s",
            "retry_cap_s",
            "shutdown_grace_s",
        ),
    ),
    (
        "Who may write, and how much",
        (
            "allowed_host",
            "allowed_origin",
            "forwarded_allow_ips",
            "client_rate",
            "client_burst",
            "max_connections",
            "max_websockets",
            "max_websockets_per_client",
            "request_timeout_s",
            "websocket_idle_s",
        ),
    ),
    (
        "In front of Hasura",
        ("hasura_url", "public_url", "gate_decides_console", "hasura_connect_s", "hasura_read_s"),
    ),
)
OTHER = "Other"


class GroupedCommand(click.Command):
    """A click command whose options `--help` lists under GROUPS' titles."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows: dict[str, tuple[str, str]] = {}
        order: list[str] = []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None and param.name is not None:
                # click names its own help option privately; it belongs with the serving flags.
                name = "help" if param is self.get_help_option(ctx) else param.name
                rows[name] = record
                order.append(name)
        placed: set[str] = set()
        for title, fields in GROUPS:
            group = [rows[field] for field in fields if field in rows]
            placed.update(field for field in fields if field in rows)
            if group:
                with formatter.section(title):
                    formatter.write_dl(group)
        rest = [rows[name] for name in order if name not in placed]
        if rest:
            with formatter.section(OTHER):
                formatter.write_dl(rest)


def grouped_flags() -> list[tuple[str, list[str]]]:
    """The groups as `--help` shows them, by flag (for docs/flags.md's test)."""
    known = {option.field for option in OPTIONS}
    groups = [(title, [flag_of(f) for f in fields if f in known]) for title, fields in GROUPS]
    named = {f for _, fields in GROUPS for f in fields}
    rest = [flag_of(option.field) for option in OPTIONS if option.field not in named]
    return groups + ([(OTHER, rest)] if rest else [])

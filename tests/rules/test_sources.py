"""The rules file's `server` and `cli` sections: compiled as written, refused with exact FILE:LINE:COL: messages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from console_proxy import RouteRules, RulesError, RulesHolder, load_rules
from console_proxy.rules.sources import DEFAULT_MAX_COUNT, CliRules, ServerSchema

HEAD = "version: 1\nroutes: [/a]\n"


def test_the_shipped_rules_list_the_server_counts_of_the_faq(default_rules: RouteRules) -> None:
    server = default_rules.server
    assert server.counts == {"tables", "views", "enum_tables", "event_triggers", "functions", "remote_schemas"}
    assert dict(server.groups) == {
        "relationships": {"manual", "auto"},
        "permissions": {"select", "insert", "update", "delete", "roles"},
        "actions": {"synchronous", "asynchronous", "query_actions", "type_relationships", "custom_types"},
        "native_queries": {"with_parameters", "without_parameters"},
        "stored_procedures": {"with_parameters", "without_parameters"},
        "logical_models": {"count"},
    }
    assert server.backends == {"postgres", "citus", "cockroach", "mssql", "bigquery", "mysql", "dataconnector"}
    assert server.max_count == 100_000


def test_the_shipped_rules_know_the_cli_command_tree_with_inherited_flags(default_rules: RouteRules) -> None:
    commands = default_rules.cli.commands
    assert len(commands) == 43
    assert commands["hasura migrate apply"] == {
        # its own
        "all-databases", "down", "dry-run", "goto", "skip-execution", "type", "up", "version",
        # hasura migrate's
        "admin-secret", "certificate-authority", "database-name", "disable-interactive", "endpoint",
        "insecure-skip-tls-verify",
        # every command's
        "cli-ext-path", "envfile", "help", "log-level", "no-color", "project", "skip-update-check",
    }  # fmt: skip
    assert commands["hasura version"] == {
        "cli-ext-path", "envfile", "help", "log-level", "no-color", "project", "skip-update-check"
    }  # fmt: skip
    assert "linux" in default_rules.cli.platforms and "amd64" in default_rules.cli.architectures


def test_without_the_sections_nothing_is_known(write_rules: Callable[[str], Path]) -> None:
    rules = load_rules(write_rules(HEAD))
    assert rules.server == ServerSchema()
    assert rules.server.metric_count == 0 and rules.server.max_count == DEFAULT_MAX_COUNT
    assert rules.cli == CliRules()


def test_a_small_section_compiles_as_written(write_rules: Callable[[str], Path]) -> None:
    rules = load_rules(
        write_rules(
            HEAD + "server:\n  max_count: 10\n  metrics: [tables, {relationships: [manual]}]\n  backends: [postgres]\n"
            "cli:\n  flags: [help]\n  commands:\n    hasura:\n    hasura migrate: [endpoint]\n"
            "    hasura migrate apply: [up]\n"
        )
    )
    assert rules.server == ServerSchema(frozenset({"tables"}), {"relationships": frozenset({"manual"})},
                                        frozenset({"postgres"}), 10)  # fmt: skip
    assert dict(rules.cli.commands) == {
        "hasura": {"help"},
        "hasura migrate": {"help", "endpoint"},
        "hasura migrate apply": {"help", "endpoint", "up"},
    }


SERVER_CASES = [
    ("server: []\n", ["3:9: 'server' is a list; expected a mapping with 'metrics' and 'backends'"]),
    (
        "server:\n  metric: []\n",
        ["4:3: unknown key 'metric' in 'server'; expected one of backends, max_count, metrics"],
    ),
    ("server:\n  max_count: 0\n", ["4:14: 'max_count' is a number (0); expected a whole number from 1 to 10000000"]),
    (
        "server:\n  max_count: 1.5\n",
        ["4:14: 'max_count' is a number (1.5); expected a whole number from 1 to 10000000"],
    ),
    (
        "server:\n  max_count: true\n",
        ["4:14: 'max_count' is a boolean (true); expected a whole number from 1 to 10000000"],
    ),
    (
        "server:\n  metrics: tables\n",
        [
            "4:12: 'metrics' is a string ('tables'); expected a list, each item a count name, or a mapping of one group"
            " name to a list of count names"
        ],
    ),
    (
        "server:\n  metrics: [tables, Views]\n",
        [
            "4:21: metric name 'Views' is not lower case letters, digits and _; expected a count name, or a mapping of"
            " one group name to a list of count names"
        ],
    ),
    (
        "server:\n  metrics: [tables, tables]\n",
        ["4:21: metric 'tables' is listed twice (first at line 4); expected each once"],
    ),
    (
        "server:\n  metrics:\n    - relationships: [manual, manual]\n",
        ["5:31: 'manual' is listed twice in metric group 'relationships' (first at line 5)"],
    ),
    (
        "server:\n  metrics:\n    - relationships: []\n",
        ["5:22: metric group 'relationships' is empty; expected at least one count name"],
    ),
    (
        "server:\n  metrics:\n    - relationships: [1]\n",
        [
            "5:23: an item of metric group 'relationships' is a number (1); expected count names (lower case letters,"
            " digits and _)"
        ],
    ),
    (
        "server:\n  backends: [postgres, 'My DB']\n",
        [
            "4:24: an item of 'backends' is a string ('My DB'); expected a backend name (lower case letters, digits"
            " and _)"
        ],
    ),
]

CLI_CASES = [
    ("cli: yes\n", ["3:6: 'cli' is a boolean (true); expected a mapping with 'commands'"]),
    (
        "cli:\n  command: {}\n",
        ["4:3: unknown key 'command' in 'cli'; expected one of architectures, commands, flags, platforms"],
    ),
    ("cli:\n  commands: [hasura]\n", ["4:13: 'commands' is a list; expected a mapping of command paths to flag lists"]),
    (
        "cli:\n  commands:\n    git push: []\n",
        ["5:5: command 'git push' is not a command path; expected 'hasura' and lower case words"],
    ),
    (
        "cli:\n  commands:\n    hasura Migrate: []\n",
        ["5:5: command 'hasura Migrate' is not a command path; expected 'hasura' and lower case words"],
    ),
    (
        "cli:\n  commands:\n    hasura: []\n    hasura migrate apply: []\n",
        ["6:5: command 'hasura migrate apply' has no parent 'hasura migrate' in 'commands'; expected it listed too"],
    ),
    (
        "cli:\n  commands:\n    hasura: [--endpoint]\n",
        [
            "5:14: an item of the flags of 'hasura' is a string ('--endpoint'); expected a flag name without dashes"
            " (lower case letters, digits and -)"
        ],
    ),
    (
        "cli:\n  flags: help\n",
        [
            "4:10: 'flags' is a string ('help'); expected a list of a flag name without dashes (lower case letters,"
            " digits and -)"
        ],
    ),
    (
        "cli:\n  platforms: [linux, Linux]\n",
        [
            "4:22: an item of 'platforms' is a string ('Linux'); expected an operating system or architecture name as"
            " Go spells it (linux, amd64...)"
        ],
    ),
    ("cli:\n  architectures: [amd64, amd64]\n", ["4:26: 'amd64' is listed twice in 'architectures' (first at line 4)"]),
]


@pytest.mark.parametrize(("section", "messages"), SERVER_CASES + CLI_CASES)
def test_a_bad_section_is_refused_with_file_line_col(
    write_rules: Callable[[str], Path], section: str, messages: list[str]
) -> None:
    path = write_rules(HEAD + section)
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    assert caught.value.messages == [f"{path}:{m}" for m in messages]


def test_problems_in_both_sections_and_the_routes_are_reported_together(write_rules: Callable[[str], Path]) -> None:
    path = write_rules("version: 1\nroutes: ['/a/{x}']\nserver:\n  max_count: -1\ncli:\n  flags: [--x]\n")
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    assert [m.split(": ", 1)[0] for m in caught.value.messages] == [f"{path}:2:14", f"{path}:4:14", f"{path}:6:11"]


def test_a_reload_swaps_both_sections_and_a_bad_one_keeps_the_old_rules(write_rules: Callable[[str], Path]) -> None:
    path = write_rules(HEAD + "cli:\n  commands:\n    hasura: []\n")
    holder = RulesHolder(path)
    first = holder.rules
    assert set(first.cli.commands) == {"hasura"} and first.server.metric_count == 0
    path.write_text(HEAD + "server:\n  metrics: [tables]\ncli:\n  commands:\n    hasura: []\n    hasura version: []\n")
    assert holder.reload() == []
    assert set(holder.rules.cli.commands) == {"hasura", "hasura version"} and holder.rules.server.counts == {"tables"}
    second = holder.rules
    path.write_text(HEAD + "server:\n  metrics: [tables]\ncli:\n  commands:\n    hasura version: []\n")
    assert holder.reload() == [
        f"{path}:7:5: command 'hasura version' has no parent 'hasura' in 'commands'; expected it listed too"
    ]
    assert holder.rules is second

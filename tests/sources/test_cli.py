"""The CLI's command events: what is kept of each era's real message, and nothing of error, payload or values."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from console_proxy import RouteRules
from console_proxy.hasura.identity import Identity
from console_proxy.sources.cli import UNKNOWN_COMMAND, ShapeError, build_cli_event, parse_cli, parse_command

from support.hasura_bodies import CLI_BODY_UUID, FLAT_FLAGS, FLAT_PATH, NESTED

GATE_CLI = "22222222-3333-4444-8555-666666666666"
GATE_SERVER = "11111111-2222-4333-8444-555555555555"


@pytest.mark.parametrize(
    ("message", "kept", "dropped"),
    [
        (NESTED, ("cli_test", "hasura migrate apply", [], False, "darwin", "amd64", None, "v1.0.0-beta.2"),
         {"bad_cli_version": 1, "unread_field": 4}),
        (FLAT_PATH, ("cli", "hasura console", [], False, "windows", "386", "v1.3.3", "v1.3.3"),
         {"unread_field": 4}),
        (FLAT_FLAGS, ("cli", "hasura migrate apply", ["admin-secret", "database-name", "endpoint"], True, "linux",
                      "arm64", "v2.36.0", "v2.36.0-ce"),
         {"unread_field": 5}),
    ],
)  # fmt: skip
def test_each_era_keeps_the_command_flags_and_checked_values(
    default_rules: RouteRules, message: dict[str, Any], kept: tuple[Any, ...], dropped: dict[str, int]
) -> None:
    report = parse_cli(message, default_rules.cli)
    assert (
        report.topic,
        report.command,
        report.flags,
        report.is_error,
        report.os_platform,
        report.os_arch,
        report.cli_version,
        report.server_version,
    ) == kept
    assert report.dropped_fields == Counter(dropped)


@pytest.mark.parametrize(
    ("command", "path", "flags", "dropped"),
    [
        ("hasura", "hasura", [], {}),
        ("hasura version --help", "hasura version", ["help"], {}),
        ("hasura metadata apply --dry-run --output", "hasura metadata apply", ["dry-run", "output"], {}),
        # a command line, not what the CLI sends: values are dropped, `--name=value` keeps the name
        ("hasura migrate apply --endpoint https://db.example/?k=CANARY --version 1700000000 --goto=12",
         "hasura migrate apply", ["endpoint", "goto", "version"], {"argument": 2}),
        # positional arguments make the path unknown
        ("hasura migrate create add_customer_email --from-server", UNKNOWN_COMMAND, [], {"unknown_command": 1}),
        ("hasura seed create alice_rows", UNKNOWN_COMMAND, [], {"unknown_command": 1}),
        # a flag of another command, a short flag, an unknown flag
        ("hasura version --endpoint -o --CANARY", "hasura version", [], {"unknown_flag": 3}),
        ("hasura migrate apply --up --up", "hasura migrate apply", ["up"], {}),
        ("hasura cloud login", UNKNOWN_COMMAND, [], {"unknown_command": 1}),
        ("rm -rf /home/alice", UNKNOWN_COMMAND, [], {"unknown_command": 1}),
        ("", UNKNOWN_COMMAND, [], {"unknown_command": 1}),
        (None, UNKNOWN_COMMAND, [], {"bad_command": 1}),
        (["hasura"], UNKNOWN_COMMAND, [], {"bad_command": 1}),
        ("hasura " + "x" * 1100, UNKNOWN_COMMAND, [], {"bad_command": 1}),
    ],
)  # fmt: skip
def test_only_known_paths_and_their_known_flag_names_pass(
    default_rules: RouteRules, command: object, path: str, flags: list[str], dropped: dict[str, int]
) -> None:
    counter: Counter[str] = Counter()
    assert parse_command(command, default_rules.cli, counter) == (path, flags)
    assert counter == Counter(dropped)


def test_wrong_types_and_unknown_values_are_dropped_each_counted(default_rules: RouteRules) -> None:
    message = {
        "topic": "cli", "command": "hasura deploy", "is_error": "yes", "os_platform": "alices-laptop",
        "os_arch": 64, "version": "v2.36.0-CANARY", "server_version": ["v2.36.0"],
    }  # fmt: skip
    report = parse_cli(message, default_rules.cli)
    assert (report.command, report.is_error, report.os_platform, report.os_arch) == (
        "hasura deploy",
        None,
        "other",
        None,
    )
    assert (report.cli_version, report.server_version) == (None, None)
    assert report.dropped_fields == Counter(
        {"bad_is_error": 1, "unknown_os_platform": 1, "bad_os_arch": 1, "bad_cli_version": 1, "bad_server_version": 1}
    )


@pytest.mark.parametrize(
    "message",
    [[], "cli", {"topic": "console"}, {"topic": "server_metrics_v2", "data": {}}, {"command": "hasura"},
     {"topic": None}],
)  # fmt: skip
def test_what_is_not_a_cli_message_is_refused_whole(default_rules: RouteRules, message: object) -> None:
    with pytest.raises(ShapeError):
        parse_cli(message, default_rules.cli)


def test_the_outbound_event_carries_the_gates_uuids_and_no_error(default_rules: RouteRules) -> None:
    report = parse_cli(FLAT_FLAGS, default_rules.cli)
    identity = Identity(server_uuid=GATE_SERVER, cli_uuid=GATE_CLI, server_version=None)
    event = build_cli_event(report, identity, now=datetime(2026, 11, 27, 19, 0, tzinfo=UTC), new_id=lambda: "e1")
    assert event == {
        "event_id": "e1",
        "cli_uuid": GATE_CLI,
        "server_uuid": GATE_SERVER,
        "command": "hasura migrate apply",
        "flags": ["admin-secret", "database-name", "endpoint"],
        "is_error": True,
        "os_platform": "linux",
        "os_arch": "arm64",
        "cli_version": "v2.36.0",
        "server_version": "v2.36.0-ce",
        "timestamp": "2026-11-27T19:00:00.000Z",
    }
    text = json.dumps(event)
    for canary in (CLI_BODY_UUID, "alice", "invoice_lines", "CANARY_QUERY", "hasura.internal", "commands.Execute"):
        assert canary not in text


WORDS = st.sampled_from(
    ["hasura", "migrate", "apply", "--endpoint", "--CANARY", "CANARY", "-o", "--up=CANARY", "metadata", "seed",
     "create", "--from-table", "version", "--help"]
)  # fmt: skip


@given(words=st.lists(WORDS | st.text(max_size=10), max_size=8), extra=st.dictionaries(st.text(max_size=8), st.text()))
def test_no_word_of_the_sender_leaves_but_the_listed_names(
    default_rules: RouteRules, words: list[str], extra: dict[str, str]
) -> None:
    report = parse_cli({**extra, "topic": "cli", "command": " ".join(words)}, default_rules.cli)
    known = default_rules.cli.commands
    assert report.command == UNKNOWN_COMMAND or report.command in known
    assert set(report.flags) <= (known.get(report.command) or set())
    assert "CANARY" not in json.dumps([report.command, report.flags])

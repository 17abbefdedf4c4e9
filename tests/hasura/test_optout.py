from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from console_proxy.core.errors import SettingsError
from console_proxy.core.settings import Settings
from console_proxy.hasura.cli_config import resolve_telemetry
from console_proxy.hasura.optout import TelemetryDecision, decide_telemetry, parse_bool

EXPECTED = "expected one of true, t, yes, y, 1, false, f, no, n, 0."


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("T", True),
        ("Yes", True),
        ("y", True),
        ("1", True),
        (" TRUE\n", True),
        ("false", False),
        ("F", False),
        ("NO", False),
        ("n", False),
        ("0", False),
        ("\tfalse ", False),
    ],
)
def test_parse_bool(text: str, value: bool) -> None:
    assert parse_bool(text, "X") is value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("maybe", f'HASURA_GRAPHQL_ENABLE_TELEMETRY is "maybe"; {EXPECTED}'),
        ("", f'HASURA_GRAPHQL_ENABLE_TELEMETRY is ""; {EXPECTED}'),
        ("on", f'HASURA_GRAPHQL_ENABLE_TELEMETRY is "on"; {EXPECTED}'),
        ("2", f'HASURA_GRAPHQL_ENABLE_TELEMETRY is "2"; {EXPECTED}'),
        ("tru e", f'HASURA_GRAPHQL_ENABLE_TELEMETRY is "tru e"; {EXPECTED}'),
        ('a"b\nc', f'HASURA_GRAPHQL_ENABLE_TELEMETRY is "a\\"b\\nc"; {EXPECTED}'),
    ],
)
def test_parse_bool_refuses(text: str, message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_bool(text, "HASURA_GRAPHQL_ENABLE_TELEMETRY")
    assert str(caught.value) == message


SERVER = Settings(mode="server")
CLI = Settings(mode="cli")
ON = Settings(mode="cli", enable_telemetry=True)
OFF = Settings(mode="cli", enable_telemetry=False)


@pytest.mark.parametrize(
    ("settings", "env", "cli_config", "decision"),
    [
        # Each source alone.
        (SERVER, {}, None, TelemetryDecision(True, "default (nothing set)")),
        (CLI, {}, {}, TelemetryDecision(True, "default (nothing set)")),
        (OFF, {}, None, TelemetryDecision(False, "--enable-telemetry=false")),
        (ON, {}, None, TelemetryDecision(True, "--enable-telemetry=true")),
        (
            SERVER,
            {"HASURA_GRAPHQL_ENABLE_TELEMETRY": "false"},
            None,
            TelemetryDecision(False, "HASURA_GRAPHQL_ENABLE_TELEMETRY=false"),
        ),
        (
            SERVER,
            {"HASURA_GRAPHQL_ENABLE_TELEMETRY": " No "},
            None,
            TelemetryDecision(False, "HASURA_GRAPHQL_ENABLE_TELEMETRY=No"),
        ),
        (
            SERVER,
            {"HASURA_GRAPHQL_ENABLE_TELEMETRY": "y"},
            None,
            TelemetryDecision(True, "HASURA_GRAPHQL_ENABLE_TELEMETRY=y"),
        ),
        (CLI, {}, {"enable_telemetry": False}, TelemetryDecision(False, "enable_telemetry in CFG")),
        (CLI, {}, {"enable_telemetry": True}, TelemetryDecision(True, "enable_telemetry in CFG")),
        (CLI, {}, {"enable_telemetry": "no"}, TelemetryDecision(False, "enable_telemetry in CFG")),
        (SERVER, {"DO_NOT_TRACK": "1"}, None, TelemetryDecision(False, "DO_NOT_TRACK=1")),
        (SERVER, {"DO_NOT_TRACK": "true"}, None, TelemetryDecision(False, "DO_NOT_TRACK=true")),
        (SERVER, {"DO_NOT_TRACK": "0"}, None, TelemetryDecision(True, "DO_NOT_TRACK=0")),
        # Set means off, whatever it says (consoledonottrack.com); only 0 and false mean "track", never an error.
        (SERVER, {"DO_NOT_TRACK": "please"}, None, TelemetryDecision(False, "DO_NOT_TRACK=please")),
        (SERVER, {"DO_NOT_TRACK": "on"}, None, TelemetryDecision(False, "DO_NOT_TRACK=on")),
        (SERVER, {"DO_NOT_TRACK": "no"}, None, TelemetryDecision(False, "DO_NOT_TRACK=no")),
        (SERVER, {"DO_NOT_TRACK": "FALSE"}, None, TelemetryDecision(True, "DO_NOT_TRACK=FALSE")),
        # Precedence: the first set decides, the rest are not read.
        (
            ON,
            {"HASURA_GRAPHQL_ENABLE_TELEMETRY": "false", "DO_NOT_TRACK": "1"},
            {"enable_telemetry": False},
            TelemetryDecision(True, "--enable-telemetry=true"),
        ),
        (
            OFF,
            {"HASURA_GRAPHQL_ENABLE_TELEMETRY": "true"},
            {"enable_telemetry": True},
            TelemetryDecision(False, "--enable-telemetry=false"),
        ),
        (
            CLI,
            {"HASURA_GRAPHQL_ENABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"},
            {"enable_telemetry": False},
            TelemetryDecision(True, "HASURA_GRAPHQL_ENABLE_TELEMETRY=true"),
        ),
        (CLI, {"DO_NOT_TRACK": "1"}, {"enable_telemetry": True}, TelemetryDecision(True, "enable_telemetry in CFG")),
        (CLI, {"DO_NOT_TRACK": "1"}, {"enable_telemetry": None}, TelemetryDecision(False, "DO_NOT_TRACK=1")),
        (CLI, {"DO_NOT_TRACK": "1"}, {"uuid": "x"}, TelemetryDecision(False, "DO_NOT_TRACK=1")),
        # The CLI config only counts in cli mode.
        (SERVER, {"DO_NOT_TRACK": "1"}, {"enable_telemetry": True}, TelemetryDecision(False, "DO_NOT_TRACK=1")),
        (SERVER, {}, {"enable_telemetry": False}, TelemetryDecision(True, "default (nothing set)")),
        # Empty variables count as unset; shadowed invalid values are never read.
        (
            SERVER,
            {"HASURA_GRAPHQL_ENABLE_TELEMETRY": "", "DO_NOT_TRACK": " "},
            None,
            TelemetryDecision(True, "default (nothing set)"),
        ),
        (
            OFF,
            {"HASURA_GRAPHQL_ENABLE_TELEMETRY": "maybe", "DO_NOT_TRACK": "maybe"},
            {"enable_telemetry": 7},
            TelemetryDecision(False, "--enable-telemetry=false"),
        ),
    ],
)
def test_decide_telemetry(
    settings: Settings, env: dict[str, str], cli_config: dict[str, Any] | None, decision: TelemetryDecision
) -> None:
    assert decide_telemetry(settings, env, cli_config, cli_config_source="CFG") == decision


def test_the_flag_can_be_named_by_its_variable() -> None:
    decision = decide_telemetry(OFF, {}, None, setting_name="CONSOLE_PROXY_ENABLE_TELEMETRY")
    assert decision == TelemetryDecision(False, "CONSOLE_PROXY_ENABLE_TELEMETRY=false")


@pytest.mark.parametrize(
    ("settings", "env", "cli_config", "message"),
    [
        (
            SERVER,
            {"HASURA_GRAPHQL_ENABLE_TELEMETRY": "maybe"},
            None,
            f'HASURA_GRAPHQL_ENABLE_TELEMETRY is "maybe"; {EXPECTED}',
        ),
        (
            CLI,
            {"HASURA_GRAPHQL_ENABLE_TELEMETRY": "off"},
            {"enable_telemetry": False},
            f'HASURA_GRAPHQL_ENABLE_TELEMETRY is "off"; {EXPECTED}',
        ),
        (CLI, {}, {"enable_telemetry": "sometimes"}, f'enable_telemetry in CFG is "sometimes"; {EXPECTED}'),
        (
            CLI,
            {},
            {"enable_telemetry": 1},
            "enable_telemetry in CFG is 1; expected true or false, or one of true, t, yes, y, 1, false, f, no, n, 0 "
            "as a string.",
        ),
        (
            CLI,
            {},
            {"enable_telemetry": ["no"]},
            'enable_telemetry in CFG is ["no"]; expected true or false, or '
            "one of true, t, yes, y, 1, false, f, no, n, 0 "
            "as a string.",
        ),
    ],
)
def test_decide_telemetry_refuses(
    settings: Settings, env: dict[str, str], cli_config: dict[str, Any] | None, message: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        decide_telemetry(settings, env, cli_config, cli_config_source="CFG")
    assert str(caught.value) == message


# resolve_telemetry reads the CLI config from disk.


def _write_config(home: Path, name: str, document: object) -> Path:
    path = home / ".hasura" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_resolve_reads_the_cli_config_in_cli_mode(tmp_path: Path) -> None:
    path = _write_config(tmp_path, "config.json", {"uuid": "x", "enable_telemetry": False})
    assert resolve_telemetry(CLI, {}, home=tmp_path) == TelemetryDecision(False, f"enable_telemetry in {path}")
    assert resolve_telemetry(SERVER, {}, home=tmp_path) == TelemetryDecision(True, "default (nothing set)")


def test_resolve_reads_the_dot_config_when_the_cli_one_is_absent(tmp_path: Path) -> None:
    path = _write_config(tmp_path, ".config.json", {"enable_telemetry": "false"})
    assert resolve_telemetry(CLI, {}, home=tmp_path) == TelemetryDecision(False, f"enable_telemetry in {path}")


def test_resolve_prefers_the_file_of_cli_config(tmp_path: Path) -> None:
    _write_config(tmp_path, "config.json", {"enable_telemetry": True})
    own = tmp_path / "own.json"
    own.write_text('{"enable_telemetry": false}', encoding="utf-8")
    settings = Settings(mode="cli", cli_config=own)
    assert resolve_telemetry(settings, {}, home=tmp_path) == TelemetryDecision(False, f"enable_telemetry in {own}")


def test_resolve_without_a_cli_config_creates_nothing(tmp_path: Path) -> None:
    env = {"DO_NOT_TRACK": "yes"}
    assert resolve_telemetry(CLI, env, home=tmp_path) == TelemetryDecision(False, "DO_NOT_TRACK=yes")
    assert list(tmp_path.iterdir()) == []


def test_resolve_refuses_a_broken_cli_config_only_when_it_could_decide(tmp_path: Path) -> None:
    path = tmp_path / ".hasura" / "config.json"
    path.parent.mkdir()
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        resolve_telemetry(CLI, {}, home=tmp_path)
    assert str(caught.value) == (
        f"The CLI config {path} is not a JSON object; expected the Hasura CLI's global config."
    )
    assert resolve_telemetry(OFF, {}, home=tmp_path) == TelemetryDecision(False, "--enable-telemetry=false")
    env = {"HASURA_GRAPHQL_ENABLE_TELEMETRY": "true"}
    assert resolve_telemetry(CLI, env, home=tmp_path) == TelemetryDecision(True, "HASURA_GRAPHQL_ENABLE_TELEMETRY=true")


@pytest.mark.parametrize(
    ("decision", "sentence"),
    [
        (
            TelemetryDecision(False, "DO_NOT_TRACK=1", "DO_NOT_TRACK"),
            "unset DO_NOT_TRACK where console-proxy starts, or start it with --enable-telemetry true.",
        ),
        (
            TelemetryDecision(False, "HASURA_GRAPHQL_ENABLE_TELEMETRY=false", "HASURA_GRAPHQL_ENABLE_TELEMETRY"),
            "set HASURA_GRAPHQL_ENABLE_TELEMETRY=true (or unset it) where console-proxy starts.",
        ),
        (
            TelemetryDecision(False, "enable_telemetry in /h/.hasura/config.json", "cli_config"),
            'set "enable_telemetry": true in the Hasura CLI\'s config file (/h/.hasura/config.json).',
        ),
        (
            TelemetryDecision(False, "CONSOLE_PROXY_ENABLE_TELEMETRY=false", "flag"),
            "start console-proxy with --enable-telemetry true (it is now set by CONSOLE_PROXY_ENABLE_TELEMETRY).",
        ),
    ],
)
def test_an_off_decision_says_how_to_turn_telemetry_on(decision: TelemetryDecision, sentence: str) -> None:
    assert decision.how_to_turn_on() == sentence

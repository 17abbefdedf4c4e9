from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from console_proxy.asgi.app import create_app
from console_proxy.cli.exits import EXIT_CONFIG
from console_proxy.cli.main import main
from console_proxy.cli.status import display_url
from console_proxy.core.settings import Settings

from support.fake_hasura import SERVER_UUID, VERSION, FakeHasura, closed_port_url, fake_hasura
from support.servers import uvicorn_server

GIVEN_UUID = "11111111-2222-4333-8444-555555555555"
CLI_UUID = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
BOOLS = "expected one of true, t, yes, y, 1, false, f, no, n, 0."
_AMBIENT = ("HASURA_", "CONSOLE_PROXY_", "DO_NOT_TRACK", "XDG_STATE_HOME")


def run_status(home: Path, *args: str, env: Mapping[str, str] | None = None) -> Result:
    """`console-proxy status ARGS` with HOME at `home`, without the caller's own proxy or opt-out variables."""
    clean: dict[str, str | None] = {key: None for key in os.environ if key.startswith(_AMBIENT)}
    clean.update({"HOME": str(home), **(env or {})})
    return CliRunner().invoke(main, ["status", *args], env=clean)


def local_tail(home: Path) -> list[str]:
    return [
        f"upstream: local only: {home}/.local/state/console-proxy/events.jsonl",
        "spool: not in use (local mode)",
        "last delivery: none (local mode)",
        "accounting: none in local mode (nothing is sent, so there is no collector's answer to count)",
    ]


def test_default_is_on_with_nothing_attached(tmp_path: Path) -> None:
    result = run_status(tmp_path)
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        "enabled: yes",
        "decided by: default (nothing set)",
        "mode: server",
        "hasura endpoint: none",
        "server_uuid: null (no --server-uuid or --hasura-endpoint: no installation ID is attached)",
        "cli_uuid: null (server mode)",
        "server_version: null",
        "test events: kept apart, under the topic console_test",
        *local_tail(tmp_path),
    ]


def test_status_says_when_development_builds_events_are_dropped(tmp_path: Path) -> None:
    result = run_status(tmp_path, env={"CONSOLE_PROXY_DROP_TEST_EVENTS": "true"})
    assert result.exit_code == 0
    assert "test events: dropped (--drop-test-events)" in result.stdout.splitlines()


def test_server_mode_shows_what_hasura_answers(tmp_path: Path) -> None:
    with fake_hasura(FakeHasura(admin_secret="s3cret")) as (fake, url):
        result = run_status(
            tmp_path, "--hasura-endpoint", url, "--admin-secret", "s3cret", "--state-dir", str(tmp_path / "state")
        )
        assert len(fake.requests("/v1/metadata")) == 1
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "enabled: yes",
        "decided by: default (nothing set)",
        "mode: server",
        f"hasura endpoint: {url}",
        f"server_uuid: {SERVER_UUID} (from the Hasura server at {url})",
        "cli_uuid: null (server mode)",
        f"server_version: {VERSION}",
        "test events: kept apart, under the topic console_test",
        f"upstream: local only: {tmp_path}/state/events.jsonl",
        "spool: not in use (local mode)",
        "last delivery: none (local mode)",
        "accounting: none in local mode (nothing is sent, so there is no collector's answer to count)",
    ]
    assert "s3cret" not in result.output


def test_hasura_down_is_reported_not_fatal(tmp_path: Path) -> None:
    url = closed_port_url()
    result = run_status(tmp_path, "--hasura-endpoint", url, "--server-uuid", GIVEN_UUID)
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout.splitlines()[3:7] == [
        f"hasura endpoint: {url} (/v1/version failed: ConnectError)",
        f"server_uuid: {GIVEN_UUID} (from --server-uuid)",
        "cli_uuid: null (server mode)",
        "server_version: null",
    ]


def test_cli_mode_reads_but_does_not_create_the_cli_config(tmp_path: Path) -> None:
    result = run_status(tmp_path, "--mode", "cli")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[2:7] == [
        "mode: cli",
        "hasura endpoint: none",
        "server_uuid: null",
        f"cli_uuid: null (serve creates one in {tmp_path}/.hasura/config.json)",
        "server_version: null",
    ]
    assert list(tmp_path.iterdir()) == []
    (tmp_path / ".hasura").mkdir()
    (tmp_path / ".hasura" / "config.json").write_text(json.dumps({"uuid": CLI_UUID}), encoding="utf-8")
    result = run_status(tmp_path, "--mode", "cli")
    assert result.stdout.splitlines()[5] == f"cli_uuid: {CLI_UUID} (from {tmp_path}/.hasura/config.json)"


@pytest.mark.parametrize(
    ("args", "env", "cli_config", "decided_by"),
    [
        (["--enable-telemetry", "false"], {}, None, "--enable-telemetry=false"),
        (["--enable-telemetry", "F"], {"HASURA_GRAPHQL_ENABLE_TELEMETRY": "true"}, None, "--enable-telemetry=false"),
        ([], {"CONSOLE_PROXY_ENABLE_TELEMETRY": "no"}, None, "CONSOLE_PROXY_ENABLE_TELEMETRY=false"),
        ([], {"HASURA_GRAPHQL_ENABLE_TELEMETRY": "false"}, None, "HASURA_GRAPHQL_ENABLE_TELEMETRY=false"),
        ([], {"DO_NOT_TRACK": "1"}, None, "DO_NOT_TRACK=1"),
        (["--mode", "cli"], {"DO_NOT_TRACK": "0"}, {"enable_telemetry": False}, "enable_telemetry in CFG"),
    ],
)
def test_off_says_why_and_looks_nothing_up(
    tmp_path: Path, args: list[str], env: dict[str, str], cli_config: dict[str, object] | None, decided_by: str
) -> None:
    config_path = tmp_path / ".hasura" / "config.json"
    if cli_config is not None:
        config_path.parent.mkdir()
        config_path.write_text(json.dumps(cli_config), encoding="utf-8")
    with fake_hasura() as (fake, url):
        result = run_status(tmp_path, *args, "--hasura-endpoint", url, env=env)
        assert fake.seen == []
    mode = "cli" if "cli" in args else "server"
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        "enabled: no",
        f"decided by: {decided_by.replace('CFG', str(config_path))}",
        f"mode: {mode}",
        "attached: nothing (telemetry is off)",
        "upstream: none (telemetry is off: nothing is kept or sent)",
    ]


@pytest.mark.parametrize(
    ("args", "env", "decided_by"),
    [
        (["--enable-telemetry", "yes"], {"DO_NOT_TRACK": "1"}, "--enable-telemetry=true"),
        ([], {"HASURA_GRAPHQL_ENABLE_TELEMETRY": "Y", "DO_NOT_TRACK": "1"}, "HASURA_GRAPHQL_ENABLE_TELEMETRY=Y"),
        ([], {"DO_NOT_TRACK": "false"}, "DO_NOT_TRACK=false"),
    ],
)
def test_on_says_why(tmp_path: Path, args: list[str], env: dict[str, str], decided_by: str) -> None:
    result = run_status(tmp_path, *args, env=env)
    assert result.exit_code == 0
    assert result.stdout.splitlines()[:2] == ["enabled: yes", f"decided by: {decided_by}"]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--enable-telemetry", "maybe"], {}, f'--enable-telemetry is "maybe"; {BOOLS}'),
        (
            [],
            {"CONSOLE_PROXY_ENABLE_TELEMETRY": "sure"},
            f'CONSOLE_PROXY_ENABLE_TELEMETRY (--enable-telemetry) is "sure"; {BOOLS}',
        ),
        ([], {"HASURA_GRAPHQL_ENABLE_TELEMETRY": "off"}, f'HASURA_GRAPHQL_ENABLE_TELEMETRY is "off"; {BOOLS}'),
        (["--port", "99999"], {}, '--port is "99999"; expected a whole number from 0 to 65535.'),
        (["--mode", "desktop"], {}, '--mode is "desktop"; expected "server" or "cli".'),
    ],
)
def test_invalid_settings_exit_with_one_sentence(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    result = run_status(tmp_path, *args, env=env)
    assert (result.exit_code, result.stdout, result.stderr) == (EXIT_CONFIG, "", message + "\n")


def test_invalid_cli_config_value_exits(tmp_path: Path) -> None:
    path = tmp_path / ".hasura" / "config.json"
    path.parent.mkdir()
    path.write_text('{"enable_telemetry": "perhaps"}', encoding="utf-8")
    result = run_status(tmp_path, "--mode", "cli")
    assert (result.exit_code, result.stderr) == (EXIT_CONFIG, f'enable_telemetry in {path} is "perhaps"; {BOOLS}\n')


def test_upstream_is_shown_without_credentials(tmp_path: Path) -> None:
    result = run_status(tmp_path, "--upstream", "https://user:pw@collector.example:8443/v1/http?key=abc")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-4:] == [
        "upstream: https://collector.example:8443/v1/http?...",
        f"spool: empty (no spool file yet at {tmp_path}/.local/state/console-proxy/spool.db)",
        "last delivery: never",
        "accounting: nothing accepted yet",
    ]
    assert "pw" not in result.output and "abc" not in result.output


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("https://u:p@h/x?token=t#f", "https://h/x?..."),
        ("http://[::1]:9/p", "http://[::1]:9/p"),
    ],
)
def test_display_url(url: str, shown: str) -> None:
    assert display_url(url) == shown


def test_status_url_asks_the_running_server(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state", server_uuid=GIVEN_UUID, drop_test_events=True)
    with uvicorn_server(create_app(settings)) as base:
        assert httpx.post(base + "/_telemetry/v1/events", json=[{"type": "A/B", "route": "/"}]).status_code == 202
        result = run_status(tmp_path, "--url", base)
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        f"server: {base}",
        "enabled: yes",
        "decided by: default (nothing set)",
        "mode: server",
        "hasura endpoint: none",
        f"server_uuid: {GIVEN_UUID} (from --server-uuid)",
        "cli_uuid: null",
        "server_version: null",
        "test events: dropped (--drop-test-events)",
        "upstream: none (local mode: kept in the server's events.jsonl)",
        "accounting: none in local mode (nothing is sent, so there is no collector's answer to count)",
    ]


def test_status_url_of_a_server_with_telemetry_off_says_how_to_turn_it_on(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state")
    with uvicorn_server(create_app(settings, env={"DO_NOT_TRACK": "please"})) as base:
        result = run_status(tmp_path, "--url", base)
    assert result.stdout.splitlines() == [
        f"server: {base}",
        "enabled: no",
        "decided by: DO_NOT_TRACK=please",
        "mode: server",
        "to turn it on: unset DO_NOT_TRACK where console-proxy starts, or start it with --enable-telemetry true.",
    ]


def test_status_url_of_nothing_is_one_sentence_and_exit_1(tmp_path: Path) -> None:
    url = closed_port_url()
    result = run_status(tmp_path, "--url", url)
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        f"cannot ask console-proxy at {url} (ConnectError); is it running there?\n",
    )

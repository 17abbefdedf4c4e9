from __future__ import annotations

import dataclasses
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from console_proxy.cli.exits import EXIT_CONFIG
from console_proxy.cli.help import grouped_flags
from console_proxy.cli.options import (
    OPTIONS,
    SERVE_OPTIONS,
    Option,
    env_of,
    exit_on_settings_error,
    flag_of,
    serve_options,
    setting_source,
    settings_from,
)
from console_proxy.core import settings as defaults
from console_proxy.core.errors import SettingsError
from console_proxy.core.settings import Settings

from support.paths import ROOT
from support.tls import make_certificates

UUID = "11111111-2222-4333-8444-555555555555"
HOME_ENV = {"HOME": "/home/someone"}
DEFAULT_STATE = Path("/home/someone/.local/state/console-proxy")
BOOLS = "expected one of true, t, yes, y, 1, false, f, no, n, 0."


def test_every_settings_field_has_a_flag() -> None:
    assert [option.field for option in OPTIONS] == [field.name for field in dataclasses.fields(Settings)]
    assert len(SERVE_OPTIONS) == len(OPTIONS) + 1  # and --config


def test_nothing_given_is_the_defaults() -> None:
    assert settings_from({}, HOME_ENV) == Settings(state_dir=DEFAULT_STATE)


def test_every_flag_parsed(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\n", encoding="utf-8")
    options: dict[str, object] = {
        "host": "0.0.0.0",
        "port": "8080",
        "rules": str(rules),
        "static": str(tmp_path),
        "prefix": "/hasura/console/",
        "upstream": "https://collector.example/v1/http",
        "state_dir": str(tmp_path / "state"),
        "mode": "cli",
        "hasura_endpoint": "http://127.0.0.1:8080",
        "admin_secret": "s3cret",
        "server_uuid": UUID.upper(),
        "cli_config": str(tmp_path / "cli.json"),
        "enable_telemetry": "No",
        "spool_max_events": "10",
        "spool_max_bytes": "2048",
        "spool_max_age_s": "60",
        "batch_max_events": "5",
        "batch_max_delay_s": "0",
        "upstream_timeout_s": "2.5",
        "retry_base_s": "0.1",
        "retry_cap_s": "1",
        "shutdown_grace_s": "0",
        "identity_refresh_s": "30",
    }
    assert settings_from(options, {}) == Settings(
        host="0.0.0.0",
        port=8080,
        rules=rules,
        static=tmp_path,
        prefix="/hasura/console",
        upstream="https://collector.example/v1/http",
        state_dir=tmp_path / "state",
        mode="cli",
        hasura_endpoint="http://127.0.0.1:8080",
        admin_secret="s3cret",
        server_uuid=UUID,
        cli_config=tmp_path / "cli.json",
        enable_telemetry=False,
        spool_max_events=10,
        spool_max_bytes=2048,
        spool_max_age_s=60.0,
        batch_max_events=5,
        batch_max_delay_s=0.0,
        upstream_timeout_s=2.5,
        retry_base_s=0.1,
        retry_cap_s=1.0,
        shutdown_grace_s=0.0,
        identity_refresh_s=30.0,
    )


def test_typed_values_are_accepted_as_they_are() -> None:
    settings = settings_from({"port": 0, "enable_telemetry": True, "retry_cap_s": 5, "mode": "server"}, HOME_ENV)
    assert (settings.port, settings.enable_telemetry, settings.retry_cap_s) == (0, True, 5.0)


def test_environment_fills_what_flags_do_not_give(tmp_path: Path) -> None:
    env = {
        "CONSOLE_PROXY_PORT": "7000",
        "CONSOLE_PROXY_UPSTREAM": "http://127.0.0.1:1/c",
        "CONSOLE_PROXY_MODE": "cli",
        "CONSOLE_PROXY_ENABLE_TELEMETRY": "yes",
        "CONSOLE_PROXY_PREFIX": "/p",
        "CONSOLE_PROXY_STATE_DIR": str(tmp_path),
        "CONSOLE_PROXY_SPOOL_MAX_EVENTS": "9",
    }
    settings = settings_from({"port": "7001", "prefix": None}, env)
    assert (
        settings.port,
        settings.upstream,
        settings.mode,
        settings.enable_telemetry,
        settings.prefix,
        settings.state_dir,
        settings.spool_max_events,
    ) == (7001, "http://127.0.0.1:1/c", "cli", True, "/p", tmp_path, 9)


def test_empty_values_mean_not_set() -> None:
    env = {
        **HOME_ENV,
        "CONSOLE_PROXY_UPSTREAM": "http://127.0.0.1:1/c",
        "CONSOLE_PROXY_PORT": "",
        "CONSOLE_PROXY_ADMIN_SECRET": "from-env",
    }
    settings = settings_from({"upstream": "", "admin_secret": ""}, env)
    assert (settings.upstream, settings.port, settings.admin_secret) == (None, defaults.DEFAULT_PORT, None)


BOOL_EXPECTED = "expected one of true, t, yes, y, 1, false, f, no, n, 0."


@pytest.mark.parametrize(
    ("options", "env", "message"),
    [
        (
            {"enable_telemetry": ""},
            {"CONSOLE_PROXY_ENABLE_TELEMETRY": "false"},
            f'--enable-telemetry is ""; {BOOL_EXPECTED}',
        ),
        (
            {},
            {"CONSOLE_PROXY_ENABLE_TELEMETRY": ""},
            f'CONSOLE_PROXY_ENABLE_TELEMETRY (--enable-telemetry) is ""; {BOOL_EXPECTED}',
        ),
    ],
)
def test_an_empty_boolean_is_an_error_naming_it(options: dict[str, object], env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        settings_from(options, {**HOME_ENV, **env})
    assert str(caught.value) == message


PREFIX_EXPECTED = 'expected a path of one or more segments starting with "/", such as "/console".'


@pytest.mark.parametrize(
    ("env", "state_dir"),
    [
        ({"HOME": "/h"}, Path("/h/.local/state/console-proxy")),
        ({"HOME": "/h", "XDG_STATE_HOME": "/xdg"}, Path("/xdg/console-proxy")),
        ({"HOME": "/h", "XDG_STATE_HOME": "relative/xdg"}, Path("/h/.local/state/console-proxy")),
        ({"HOME": "/h", "XDG_STATE_HOME": ""}, Path("/h/.local/state/console-proxy")),
    ],
)
def test_settings_from_fills_in_the_default_state_dir(env: dict[str, str], state_dir: Path) -> None:
    assert settings_from({}, env).state_dir == state_dir


@pytest.mark.parametrize(
    ("options", "env", "message"),
    [
        ({"port": "abc"}, {}, '--port is "abc"; expected a whole number from 0 to 65535.'),
        ({"port": "65536"}, {}, '--port is "65536"; expected a whole number from 0 to 65535.'),
        ({"port": "-1"}, {}, '--port is "-1"; expected a whole number from 0 to 65535.'),
        ({"port": "80.5"}, {}, '--port is "80.5"; expected a whole number from 0 to 65535.'),
        ({"port": True}, {}, "--port is true; expected a whole number from 0 to 65535."),
        (
            {},
            {"CONSOLE_PROXY_PORT": "http"},
            'CONSOLE_PROXY_PORT (--port) is "http"; expected a whole number from 0 to 65535.',
        ),
        ({"host": " "}, {}, '--host is " "; expected a host name or IP address.'),
        ({"host": "http://x"}, {}, '--host is "http://x"; expected a host name or IP address.'),
        ({"prefix": "console"}, {}, f'--prefix is "console"; {PREFIX_EXPECTED}'),
        ({"prefix": "/a//b"}, {}, f'--prefix is "/a//b"; {PREFIX_EXPECTED}'),
        ({"prefix": "/a?b"}, {}, f'--prefix is "/a?b"; {PREFIX_EXPECTED}'),
        ({"prefix": ""}, {}, f'--prefix is ""; {PREFIX_EXPECTED}'),
        ({"prefix": "/"}, {}, f'--prefix is "/"; {PREFIX_EXPECTED}'),
        ({"prefix": "//"}, {}, f'--prefix is "//"; {PREFIX_EXPECTED}'),
        ({}, {"CONSOLE_PROXY_PREFIX": "x/"}, f'CONSOLE_PROXY_PREFIX (--prefix) is "x/"; {PREFIX_EXPECTED}'),
        ({"mode": "CLI"}, {}, '--mode is "CLI"; expected "server" or "cli".'),
        ({}, {"CONSOLE_PROXY_MODE": "both"}, 'CONSOLE_PROXY_MODE (--mode) is "both"; expected "server" or "cli".'),
        ({"upstream": "ftp://x/y"}, {}, '--upstream is "ftp://x/y"; expected an http:// or https:// URL with a host.'),
        (
            {"upstream": "collector:8080"},
            {},
            '--upstream is "collector:8080"; expected an http:// or https:// URL with a host.',
        ),
        (
            {"upstream": "http:///path"},
            {},
            '--upstream is "http:///path"; expected an http:// or https:// URL with a host.',
        ),
        (
            {"upstream": "http://x:99999/"},
            {},
            '--upstream is "http://x:99999/"; expected an http:// or https:// URL with a host.',
        ),
        (
            {"upstream": "http://a b/"},
            {},
            '--upstream is "http://a b/"; expected an http:// or https:// URL with a host.',
        ),
        (
            {},
            {"CONSOLE_PROXY_HASURA_ENDPOINT": "localhost:8080"},
            "CONSOLE_PROXY_HASURA_ENDPOINT (--hasura-endpoint) is "
            '"localhost:8080"; expected an http:// or https:// URL '
            "with a host.",
        ),
        ({"server_uuid": "abc"}, {}, f'--server-uuid is "abc"; expected a UUID such as "{UUID}".'),
        (
            {"server_uuid": UUID.replace("-", "")},
            {},
            f'--server-uuid is "{UUID.replace("-", "")}"; expected a UUID such as "{UUID}".',
        ),
        ({"server_uuid": "{" + UUID + "}"}, {}, f'--server-uuid is "{{{UUID}}}"; expected a UUID such as "{UUID}".'),
        ({"enable_telemetry": "maybe"}, {}, f'--enable-telemetry is "maybe"; {BOOLS}'),
        (
            {},
            {"CONSOLE_PROXY_ENABLE_TELEMETRY": "off"},
            f'CONSOLE_PROXY_ENABLE_TELEMETRY (--enable-telemetry) is "off"; {BOOLS}',
        ),
        ({"spool_max_events": "0"}, {}, '--spool-max-events is "0"; expected a whole number, at least 1.'),
        ({"spool_max_bytes": "1e6"}, {}, '--spool-max-bytes is "1e6"; expected a whole number, at least 1.'),
        ({"batch_max_events": "many"}, {}, '--batch-max-events is "many"; expected a whole number, at least 1.'),
        ({"spool_max_age_s": "0"}, {}, '--spool-max-age-s is "0"; expected a number of seconds above 0.'),
        ({"upstream_timeout_s": "nan"}, {}, '--upstream-timeout-s is "nan"; expected a number of seconds above 0.'),
        ({"identity_refresh_s": "inf"}, {}, '--identity-refresh-s is "inf"; expected a number of seconds above 0.'),
        ({"batch_max_delay_s": "-1"}, {}, '--batch-max-delay-s is "-1"; expected a number of seconds, 0 or more.'),
        ({"shutdown_grace_s": "soon"}, {}, '--shutdown-grace-s is "soon"; expected a number of seconds, 0 or more.'),
        ({"retry_base_s": "2", "retry_cap_s": "1"}, {}, '--retry-cap-s is "1"; expected at least --retry-base-s (2).'),
        ({"retry_base_s": "400"}, {}, '--retry-base-s is "400"; expected at most --retry-cap-s (300).'),
        (
            {},
            {"CONSOLE_PROXY_RETRY_CAP_S": "0.1"},
            'CONSOLE_PROXY_RETRY_CAP_S (--retry-cap-s) is "0.1"; expected at least --retry-base-s (0.5).',
        ),
    ],
)
def test_invalid_values_are_one_sentence(options: dict[str, object], env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        settings_from(options, {**HOME_ENV, **env})
    assert str(caught.value) == message


def test_paths_are_checked(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x", encoding="utf-8")
    cases = {
        "rules": (str(tmp_path / "missing.yaml"), "an existing file"),
        "static": (str(a_file), "an existing directory"),
        "state_dir": (str(a_file), "a directory (it is created when missing)"),
        "cli_config": (str(tmp_path), "a file (it is created when missing), not a directory"),
    }
    for field, (value, expected) in cases.items():
        with pytest.raises(SettingsError) as caught:
            settings_from({field: value}, HOME_ENV)
        assert str(caught.value) == f'{flag_of(field)} is "{value}"; expected {expected}.'
    settings = settings_from({"state_dir": str(tmp_path / "new"), "cli_config": str(tmp_path / "new.json")}, HOME_ENV)
    assert (settings.state_dir, settings.cli_config) == (tmp_path / "new", tmp_path / "new.json")


def test_admin_secret_is_never_quoted_in_errors() -> None:
    with pytest.raises(SettingsError) as caught:
        settings_from({"admin_secret": "s3cret", "port": "x"}, HOME_ENV)
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(
    ("options", "env", "source"),
    [
        ({}, {}, "--enable-telemetry"),
        ({"enable_telemetry": "no"}, {"CONSOLE_PROXY_ENABLE_TELEMETRY": "yes"}, "--enable-telemetry"),
        ({"enable_telemetry": None}, {"CONSOLE_PROXY_ENABLE_TELEMETRY": "yes"}, "CONSOLE_PROXY_ENABLE_TELEMETRY"),
    ],
)
def test_setting_source(options: dict[str, object], env: dict[str, str], source: str) -> None:
    assert setting_source(options, env, "enable_telemetry") == source


def test_names() -> None:
    assert flag_of("spool_max_age_s") == "--spool-max-age-s"
    assert env_of("spool_max_age_s") == "CONSOLE_PROXY_SPOOL_MAX_AGE_S"
    assert EXIT_CONFIG == 2


@click.command()
@serve_options
def _echo(**options: object) -> None:
    with exit_on_settings_error():
        settings = settings_from(options, HOME_ENV)
    click.echo(f"{settings.port} {settings.enable_telemetry} {settings.upstream}")


def test_serve_options_as_click_flags() -> None:
    runner = CliRunner()
    result = runner.invoke(_echo, ["--port", "1234", "--enable-telemetry", "false", "--upstream", "http://h/c"])
    assert (result.exit_code, result.output) == (0, "1234 False http://h/c\n")
    result = runner.invoke(_echo, ["--port", "x"])
    assert result.exit_code == EXIT_CONFIG
    assert result.stderr == '--port is "x"; expected a whole number from 0 to 65535.\n'
    assert result.stdout == ""


def test_help_states_every_default_and_variable() -> None:
    result = CliRunner().invoke(_echo, ["--help"], terminal_width=1000)
    lines = [
        line
        for line in result.output.splitlines()
        if line.strip().startswith("--") and not line.strip().startswith(("--help", "--config"))
    ]
    assert len(lines) == len(OPTIONS)
    for option, line in zip(OPTIONS, lines, strict=True):
        assert line.strip().startswith(flag_of(option.field) + " ")
        assert f"Default: {option.default}. Env: {env_of(option.field)}." in line


def doc_flag_row(option: Option) -> str:
    flag = f"{flag_of(option.field)} {option.metavar}".replace("|", "\\|")
    return f"| `{flag}` | `{env_of(option.field)}` | {option.default} | {option.help} |"


def test_the_documented_flag_table_is_the_help() -> None:
    # docs/flags.md's tables of serve flags say what --help says, row for row, group by group, in the same order.
    doc = (ROOT / "docs" / "flags.md").read_text(encoding="utf-8")
    by_flag = {flag_of(option.field): option for option in OPTIONS}
    expected: list[str] = []
    for title, flags in grouped_flags():
        expected.append(f"### {title}")
        expected += [doc_flag_row(by_flag[flag]) for flag in flags]
    rows = [
        line
        for line in doc.splitlines()
        if (line.startswith("| `--") and "`CONSOLE_PROXY_" in line and not line.startswith("| `--config"))
        or (line.startswith("### ") and doc.index("## Flags by group") < doc.index(line))
    ]
    assert rows == expected


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"CONSOLE_PROXY_ENABLE_TELEMETRI": "false"},
            "CONSOLE_PROXY_ENABLE_TELEMETRI is set but is not a console-proxy setting; did you mean "
            "CONSOLE_PROXY_ENABLE_TELEMETRY?",
        ),
        (
            {"CONSOLE_PROXY_UPSTREAM_URL": "http://h/"},
            "CONSOLE_PROXY_UPSTREAM_URL is set but is not a console-proxy "
            "setting; did you mean CONSOLE_PROXY_UPSTREAM?",
        ),
        (
            {"CONSOLE_PROXY_ZZZ": "1"},
            'CONSOLE_PROXY_ZZZ is set but is not a console-proxy setting; expected one listed by "console-proxy serve '
            '--help".',
        ),
    ],
)
def test_unknown_variables_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        settings_from({}, {**HOME_ENV, **env})
    assert str(caught.value) == message


def test_unknown_empty_variables_and_other_prefixes_are_ignored() -> None:
    env = {**HOME_ENV, "CONSOLE_PROXY_ZZZ": "", "CONSOLE_PROXYX": "1", "HASURA_GRAPHQL_X": "1"}
    assert settings_from({}, env) == Settings(state_dir=DEFAULT_STATE)


HOSTS_EXPECTED = 'expected host names such as "console.example.com" or "*.example.com", without a port.'


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"allowed_host": ("a.example:80",)}, f'--allowed-host is ["a.example:80"]; {HOSTS_EXPECTED}'),
        ({"allowed_host": ("a.*.example",)}, f'--allowed-host is ["a.*.example"]; {HOSTS_EXPECTED}'),
        ({"request_timeout_s": "0"}, '--request-timeout-s is "0"; expected a number of seconds above 0.'),
    ],
)
def test_bad_hosts_and_limits_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        settings_from(options, HOME_ENV)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("options", "env", "expected"),
    [
        (
            {"allowed_host": ("Console.Example.com", "*.corp.example", "[::1]")},
            {},
            ("console.example.com", "*.corp.example", "[::1]"),
        ),
        ({}, {"CONSOLE_PROXY_ALLOWED_HOST": "a.example, b.example"}, ("a.example", "b.example")),
        ({"allowed_host": ()}, {}, ()),
    ],
)
def test_allowed_hosts_are_repeatable_or_a_list(
    options: dict[str, object], env: dict[str, str], expected: tuple[str, ...]
) -> None:
    assert settings_from(options, {**HOME_ENV, **env}).allowed_host == expected


ORIGINS_EXPECTED = 'expected origins such as "https://console.example.com" or "http://localhost:8080".'


@pytest.mark.parametrize(
    ("options", "env", "expected"),
    [
        (
            {"allowed_origin": ("HTTPS://A.example:443", "http://localhost:8080/")},
            {},
            ("https://a.example", "http://localhost:8080"),
        ),
        (
            {},
            {"CONSOLE_PROXY_ALLOWED_ORIGIN": "https://a.example, http://[::1]:3000"},
            ("https://a.example", "http://[::1]:3000"),
        ),
        ({"allowed_origin": ()}, {}, ()),
    ],
)
def test_allowed_origins_are_repeatable_or_a_list(
    options: dict[str, object], env: dict[str, str], expected: tuple[str, ...]
) -> None:
    assert settings_from(options, {**HOME_ENV, **env}).allowed_origin == expected


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"allowed_origin": ("https://a.example/console",)},
            f'--allowed-origin is ["https://a.example/console"]; {ORIGINS_EXPECTED}',
        ),
        ({"allowed_origin": ("a.example",)}, f'--allowed-origin is ["a.example"]; {ORIGINS_EXPECTED}'),
        ({"allowed_origin": ("null",)}, f'--allowed-origin is ["null"]; {ORIGINS_EXPECTED}'),
        ({"client_rate": "0"}, '--client-rate is "0"; expected a number of events a second above 0.'),
        ({"client_rate": "nan"}, '--client-rate is "nan"; expected a number of events a second above 0.'),
        ({"client_burst": "0"}, '--client-burst is "0"; expected a whole number, at least 1.'),
    ],
)
def test_bad_origins_and_budgets_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        settings_from(options, HOME_ENV)
    assert str(caught.value) == message


def test_budgets() -> None:
    settings = settings_from({"client_rate": "2.5", "client_burst": "10"}, HOME_ENV)
    assert (settings.client_rate, settings.client_burst) == (2.5, 10)
    assert (Settings().client_rate, Settings().client_burst) == (100.0, 1000)


def test_the_collectors_variables_are_not_taken_for_misspelt_serve_flags() -> None:
    settings = settings_from({}, {"HOME": "/home/someone", "CONSOLE_PROXY_COLLECT_MIN_INSTALLATIONS": "3"})
    assert settings.mode == "server"
    with pytest.raises(SettingsError) as refused:
        settings_from({}, {"HOME": "/home/someone", "CONSOLE_PROXY_COLECT_PORT": "1"})
    assert str(refused.value).startswith("CONSOLE_PROXY_COLECT_PORT is set but is not a console-proxy setting;")


def test_reverse_proxy_mode_asks_the_relayed_hasura_for_its_identity() -> None:
    settings = settings_from({"hasura_url": "http://hasura:8080", "hasura_read_s": "0"}, HOME_ENV)
    assert (settings.hasura_url, settings.hasura_endpoint, settings.hasura_read_s) == (
        "http://hasura:8080",
        "http://hasura:8080",
        None,
    )
    other = settings_from({"hasura_url": "http://hasura:8080", "hasura_endpoint": "http://h2:8080"}, HOME_ENV)
    assert other.hasura_endpoint == "http://h2:8080"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"public_url": "https://hasura.example.com/a?b=c"},
            '--public-url is "https://hasura.example.com/a?b=c"; expected an http:// or https:// URL with a host and at'
            " most a path, such as https://hasura.example.com.",
        ),
        ({"hasura_read_s": "-1"}, '--hasura-read-s is "-1"; expected a number of seconds, 0 or more.'),
        (
            {"gate_decides_console": "sure"},
            '--gate-decides-console is "sure"; expected one of true, t, yes, y, 1, false, f, no, n, 0.',
        ),
    ],
)
def test_bad_reverse_proxy_settings(options: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        settings_from(options, HOME_ENV)
    assert str(caught.value) == message


def test_tls_settings_are_checked_at_start_up(tmp_path: Path) -> None:
    certs = make_certificates(tmp_path / "certs", "telemetry.hasura.io")
    settings = settings_from({"ssl_certfile": str(certs.cert), "ssl_keyfile": str(certs.key)}, HOME_ENV)
    assert (settings.ssl_certfile, settings.ssl_keyfile) == (certs.cert, certs.key)
    with pytest.raises(SettingsError) as caught:
        settings_from({"ssl_keyfile": str(certs.key)}, HOME_ENV)
    assert str(caught.value) == f'--ssl-keyfile is "{certs.key}"; expected a key for --ssl-certfile, which is not set.'
    with pytest.raises(SettingsError) as caught:
        settings_from({"ssl_certfile": str(certs.ca)}, HOME_ENV)
    assert str(caught.value).startswith(f'--ssl-certfile is "{certs.ca}"; expected a PEM certificate whose key is in')

"""`console-proxy rules check|test` through click's runner, and once through a real pipe."""

from __future__ import annotations

import selectors
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from console_proxy.cli.main import main
from console_proxy.resources import default_rules_path

# The shipped rules' actions.shape, as route_rules.yaml spells it.
SHIPPED_SHAPE = "(?:@@[a-z][a-z0-9]*/|(?:[A-Z][A-Za-z0-9]*/){1,3})?[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*"
CONTRACT_IN = [
    "/console/data/default/schema/public/tables/users/browse?filter=email%3B%24eq%3Ba%40b.c",
    "/console/no/such/page",
    "/console/settings/about",
]
CONTRACT_OUT = ["/data/SOURCE/schema/SCHEMA/tables/TABLE/browse", "/UNKNOWN", "/settings/about"]
SUMMARY = (
    "ok, 193 templates, 1 prefix, 7 dropped action patterns, action names shaped like "
    + repr(SHIPPED_SHAPE)
    + ", 23 server counts, 43 CLI commands"
)


def test_check_the_shipped_rules() -> None:
    result = CliRunner().invoke(main, ["rules", "check"])
    assert (result.exit_code, result.stdout, result.stderr) == (0, f"{default_rules_path()}: {SUMMARY}\n", "")


def test_check_a_named_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(default_rules_path().parent)
    result = CliRunner().invoke(main, ["rules", "check", "route_rules.yaml"])
    assert (result.exit_code, result.stdout, result.stderr) == (0, f"route_rules.yaml: {SUMMARY}\n", "")


def test_check_reports_allowlist_mode(write_rules: Callable[[str], Path]) -> None:
    path = write_rules("version: 1\nroutes: [/a, /b]\nprefixes: [/x, /y/z]\nactions:\n  allow: [A, 'B/*', C]\n")
    result = CliRunner().invoke(main, ["rules", "check", str(path)])
    assert result.exit_code == 0
    assert result.stdout == (
        f"{path}: ok, 2 templates, 2 prefixes, 0 dropped action patterns, allowlist mode with 3 allowed patterns,"
        " 0 server counts, 0 CLI commands\n"
    )


def test_check_a_bad_file(write_rules: Callable[[str], Path]) -> None:
    path = write_rules("version: 1\nroutes:\n  - /a/{x}\n  - /a/{x}\nfoo: 1\n")
    result = CliRunner().invoke(main, ["rules", "check", str(path)])
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"{path}:3:8: parameter name 'x' is not valid; expected upper-case letters, digits and _ starting with a"
        " letter, such as TABLE\n"
        f"{path}:4:8: parameter name 'x' is not valid; expected upper-case letters, digits and _ starting with a"
        " letter, such as TABLE\n"
        f"{path}:5:1: unknown key 'foo' in the top level; expected one of actions, cli, prefixes, routes, server,"
        " unknown, version\n"
    )


def test_check_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    result = CliRunner().invoke(main, ["rules", "check", str(missing)])
    assert (result.exit_code, result.stderr) == (
        1,
        f"{missing}:1:1: the file does not exist; expected a readable YAML rules file\n",
    )


def test_test_reads_stdin_line_by_line() -> None:
    lines = [*CONTRACT_IN, "", "   ", "https://h.example/console/api/rest/details/x?y#z"]
    result = CliRunner().invoke(main, ["rules", "test"], input="\n".join(lines) + "\r\n")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [*CONTRACT_OUT, "/", "/", "/api/rest/details/REST_ENDPOINT"]


def test_test_takes_urls_as_arguments() -> None:
    result = CliRunner().invoke(main, ["rules", "test", *CONTRACT_IN])
    assert (result.exit_code, result.stdout.splitlines()) == (0, CONTRACT_OUT)


def test_test_with_prefixes_and_a_rules_file(write_rules: Callable[[str], Path]) -> None:
    path = write_rules("version: 1\nunknown: /NONE\nroutes:\n  - /x/{ID}\n")
    args = ["rules", "test", "--rules", str(path), "--prefix", "/hasura/console", "--prefix", "admin"]
    urls = ["/hasura/console/x/1", "/admin/x/2", "/x/3", "/console/x/4", "/hasura/x/5"]
    result = CliRunner().invoke(main, [*args, *urls])
    assert (result.exit_code, result.stdout.splitlines()) == (0, ["/x/ID", "/x/ID", "/x/ID", "/NONE", "/NONE"])


def test_test_with_a_bad_rules_file(write_rules: Callable[[str], Path]) -> None:
    path = write_rules("version: 1\n")
    result = CliRunner().invoke(main, ["rules", "test", "--rules", str(path), "/a"])
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"{path}:1:1: missing key 'routes'; expected a list of route templates\n"


def test_test_with_a_bad_prefix() -> None:
    result = CliRunner().invoke(main, ["rules", "test", "--prefix", "/a b", "/a"])
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        "--prefix:1:1: prefix '/a b' is not valid; expected leading path segments such as /console or /hasura/console\n"
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["rules", "--help"], "Check and try route rules"),
        (["rules", "check", "--help"], "Usage: main rules check [OPTIONS] [FILE]"),
        (["rules", "test", "--help"], "--prefix P                     Another URL prefix to strip"),
    ],
)
def test_help(args: list[str], expected: str) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0
    assert expected in result.stdout


def test_test_answers_each_line_through_a_real_pipe() -> None:
    # Each answer must arrive while stdin is still open: that is what makes `tail -f log | ... rules test` work.
    proc = subprocess.Popen(
        [sys.executable, "-m", "console_proxy", "rules", "test"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    assert proc.stdin is not None and proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    try:
        for url, expected in zip(CONTRACT_IN, CONTRACT_OUT, strict=True):
            proc.stdin.write(url + "\n")
            proc.stdin.flush()
            assert selector.select(timeout=30), "no answer while stdin stays open"
            assert proc.stdout.readline() == expected + "\n"
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
        assert proc.stdout.read() == ""
    finally:
        selector.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        if proc.stderr is not None:
            proc.stderr.close()


CLI_LINES = [
    ("hasura migrate apply --admin-secret --endpoint", "hasura migrate apply --admin-secret --endpoint"),
    (
        "hasura migrate apply --endpoint https://db.example/?k=v --version 1700000000",
        "hasura migrate apply --endpoint --version",
    ),
    ("hasura migrate create add_email --from-server", "UNKNOWN"),
    ("hasura version --endpoint", "hasura version"),
    (
        '{"topic": "cli", "command": "hasura deploy --endpoint", "is_error": true, "error": {"sql": "drop table x"},'
        ' "os_platform": "linux", "os_arch": "amd64", "version": "v2.36.0", "uuid": "u"}',
        '{"topic":"cli","command":"hasura deploy","flags":["endpoint"],"is_error":true,"os_platform":"linux",'
        '"os_arch":"amd64","cli_version":"v2.36.0","server_version":null}',
    ),
    ('{"topic": "server_metrics_v2", "data": {}}', "REFUSED"),
    ("{", "REFUSED"),
]


def test_test_cli_commands_from_arguments_and_stdin() -> None:
    inputs = [line for line, _ in CLI_LINES]
    expected = "".join(out + "\n" for _, out in CLI_LINES)
    result = CliRunner().invoke(main, ["rules", "test", "--source", "cli", *inputs])
    assert (result.exit_code, result.output) == (0, expected)
    result = CliRunner().invoke(main, ["rules", "test", "--source", "cli"], input="\n".join(inputs) + "\n")
    assert (result.exit_code, result.output) == (0, expected)


def test_test_server_messages() -> None:
    messages = [
        '{"topic": "server", "data": {"version": "v1.0.0-alpha36", "db_uid": "d",'
        ' "metrics": {"tables": 2, "views": -1}}}',
        '{"topic": "server_metrics_v2_test", "data": {"source_metadata": {"backend_type": "dataconnector",'
        ' "db_kind": "acme_sqlite"}, "metrics": {"relationships": {"manual": 1, "auto": 2}}}}',
        '{"server_metrics": {"resource_cpu": 2}}',
        '{"topic": "cli"}',
    ]
    result = CliRunner().invoke(main, ["rules", "test", "--source", "server"], input="\n".join(messages) + "\n")
    assert (result.exit_code, result.output) == (
        0,
        '{"topic":"server_metrics_v2","server_version":"v1.0.0-alpha36","backend_type":null,"db_kind":null,'
        '"metrics":{"tables":2}}\n'
        '{"topic":"server_metrics_v2_test","server_version":null,"backend_type":"dataconnector","db_kind":"other",'
        '"metrics":{"relationships":{"manual":1,"auto":2}}}\n'
        '{"topic":null,"server_version":null,"backend_type":null,"db_kind":null,"metrics":{}}\n'
        "REFUSED\n",
    )

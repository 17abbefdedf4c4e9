"""What `console-proxy hasura` records of a command: the path and flag names, never a value or an argument."""

from __future__ import annotations

import pytest

from console_proxy.hasura import cli_command
from console_proxy.rules.route_rules import RouteRules


@pytest.mark.parametrize(
    ("args", "command"),
    [
        ([], "hasura"),
        (["version"], "hasura version"),
        (["migrate", "apply"], "hasura migrate apply"),
        (
            ["migrate", "apply", "--endpoint", "https://h.example/x?secret=1", "--admin-secret=s3cret", "--up", "all"],
            "hasura migrate apply --admin-secret --endpoint --up",
        ),
        (["--skip-update-check", "metadata", "apply"], "hasura metadata apply --skip-update-check"),
        (["--envfile", ".env.prod", "metadata", "export"], "hasura metadata export --envfile"),
        (["migrate", "create", "add_customer_email", "--from-server"], "hasura migrate create --from-server"),
        (["migrate", "create", "apply"], "hasura migrate create"),
        (["console", "-e", "http://h", "--no-browser"], "hasura console --no-browser"),
        (["seed", "create", "alice", "--", "--not-a-flag"], "hasura seed create"),
        (["--Bad_Name=1", "--", "version"], "hasura"),
        (["deploy", "--" + "a" * 65, "--endpoint=x"], "hasura deploy --endpoint"),
    ],
)
def test_describe(default_rules: RouteRules, args: list[str], command: str) -> None:
    assert cli_command.describe(args, default_rules.cli.commands) == command


@pytest.mark.parametrize(
    ("output", "version"),
    [
        ("INFO hasura cli                                   version=v2.36.0\n", "v2.36.0"),
        ('{"level":"info","msg":"hasura cli","version":"v2.40.0"}', "v2.40.0"),
        ("hasura version v1.3.3-beta.1", "v1.3.3-beta.1"),
        ("INFO hasura cli version=dev-5f2a", "dev-5f2a"),
        ("nothing here", None),
    ],
)
def test_version_in(output: str, version: str | None) -> None:
    assert cli_command.version_in(output) == version


@pytest.mark.parametrize(
    ("version", "topic"), [("v2.36.0", "cli"), ("2.36.0-beta.1", "cli"), ("dev-5f2a", "cli_test"), (None, "cli")]
)
def test_topic_of(version: str | None, topic: str) -> None:
    assert cli_command.topic_of(version) == topic

"""`serve --help` and `status --help` in groups, every flag's line kept; click's shell completion, as documented."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from console_proxy.cli.flags import OPTIONS
from console_proxy.cli.help import GROUPS, grouped_flags
from console_proxy.cli.main import main
from console_proxy.cli.values import flag_of


def test_every_flag_is_in_one_group() -> None:
    named = [field for _, fields in GROUPS for field in fields]
    assert len(named) == len(set(named))
    assert {option.field for option in OPTIONS} <= set(named)
    assert [flag for _, flags in grouped_flags() for flag in flags] == [
        flag_of(field) for field in named if field in {option.field for option in OPTIONS}
    ]


@pytest.mark.parametrize("command", ["serve", "status"])
def test_help_lists_the_groups_in_order_with_every_flag_once(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"], terminal_width=1000)
    assert result.exit_code == 0
    lines = result.output.splitlines()
    titles = [line.rstrip(":") for line in lines if line and not line.startswith(" ") and line.endswith(":")]
    assert titles == [title for title, _ in GROUPS]
    flags = [line.split()[0].rstrip(",") for line in lines if line.startswith("  -")]
    expected = {flag_of(option.field) for option in OPTIONS} | {"--config", "-h"}
    assert expected <= set(flags) and len(flags) == len(set(flags))


def test_shell_completion_is_clicks_as_documented() -> None:
    env = {**os.environ, "_CONSOLE_PROXY_COMPLETE": "bash_source"}
    script = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "console-proxy")], env=env, capture_output=True, text=True
    )
    assert script.returncode == 0 and "_console_proxy_completion()" in script.stdout
    env = {
        **os.environ,
        "_CONSOLE_PROXY_COMPLETE": "bash_complete",
        "COMP_WORDS": "console-proxy ser",
        "COMP_CWORD": "1",
    }
    words = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "console-proxy")], env=env, capture_output=True, text=True
    )
    assert words.stdout.splitlines() == ["plain,serve"]

"""`--upstream-token-file`: read at start-up, a clear exit 2 when it cannot be used, never shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from console_proxy.cli.exits import EXIT_CONFIG
from console_proxy.cli.main import main
from console_proxy.cli.options import settings_from
from console_proxy.cli.serve import token_warning
from console_proxy.core.errors import SettingsError
from console_proxy.core.settings import Settings

TOKEN = "upstream-token-0123456789"
UPSTREAM = "http://127.0.0.1:9/v1/batches"


def test_the_token_file_is_a_flag_a_variable_and_a_setting(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(f"\n{TOKEN}\n")
    token.chmod(0o600)
    env = {"HOME": str(tmp_path)}
    by_flag = settings_from({"upstream": UPSTREAM, "upstream_token_file": str(token)}, env)
    by_variable = settings_from({"upstream": UPSTREAM}, {**env, "CONSOLE_PROXY_UPSTREAM_TOKEN_FILE": str(token)})
    assert by_flag.upstream_token_file == by_variable.upstream_token_file == token
    assert TOKEN not in repr(by_flag)  # only the path is kept in the settings
    assert token_warning(by_flag) is None


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "expected a readable file (No such file or directory)."),
        ("", "expected a file holding a token (it is empty)."),
        ("\n   \n", "expected a file holding a token (it is empty)."),
        ("short\n", "expected a file whose first line is a token: 16 to 512 visible ASCII characters."),
        ("a token with spaces in it\n", "expected a file whose first line is a token"),
    ],
)
def test_a_token_file_that_cannot_be_used_stops_the_start(tmp_path: Path, content: str | None, expected: str) -> None:
    token = tmp_path / "token"
    if content is not None:
        token.write_text(content)
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["serve", "--check", "--upstream", UPSTREAM, "--upstream-token-file", str(token)],
        env={"HOME": str(tmp_path)},
    )
    assert result.exit_code == EXIT_CONFIG
    assert f'--upstream-token-file is "{token}"; {expected}' in result.stderr
    assert "short" not in result.stderr and "spaces" not in result.stderr


def test_a_token_file_needs_an_upstream(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN)
    with pytest.raises(SettingsError, match="no token file in local mode"):
        settings_from({"upstream_token_file": str(token)}, {"HOME": str(tmp_path)})


def test_a_token_file_others_may_read_is_warned_of_and_the_token_never_shown(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN)
    token.chmod(0o644)
    settings = Settings(upstream=UPSTREAM, upstream_token_file=token, state_dir=tmp_path)
    warning = token_warning(settings)
    assert warning is not None and "may be read by other users" in warning and "chmod 600" in warning
    assert TOKEN not in warning

"""`--config FILE`: keys named like the flags; the flag, then its variable, then the file, then the default."""

from __future__ import annotations

from pathlib import Path

import pytest

from console_proxy.cli.config_file import read_config_file
from console_proxy.cli.options import settings_from
from console_proxy.core.errors import SettingsError

HOME_ENV = {"HOME": "/home/someone"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "console-proxy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_file_sets_what_flags_and_variables_leave_unset(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "port: 8080\nworkers: 1\nallowed-origin: [https://a.example, https://b.example]\nlog-format: json\n"
        "drop-test-events: true\nupstream: https://collector.example/v1\nretry-base-s: 0.25\n",
    )
    settings = settings_from({}, HOME_ENV, read_config_file(path))
    assert (settings.port, settings.allowed_origin, settings.log_format) == (
        8080,
        ("https://a.example", "https://b.example"),
        "json",
    )
    assert (settings.drop_test_events, settings.upstream, settings.retry_base_s) == (
        True,
        "https://collector.example/v1",
        0.25,
    )


def test_the_flag_beats_the_variable_which_beats_the_file(tmp_path: Path) -> None:
    file = read_config_file(write(tmp_path, "port: 8080\nprefix: /from-file\nmode: cli\n"))
    env = {**HOME_ENV, "CONSOLE_PROXY_PORT": "8081", "CONSOLE_PROXY_PREFIX": "/from-env"}
    settings = settings_from({"port": "8082"}, env, file)
    assert (settings.port, settings.prefix, settings.mode) == (8082, "/from-env", "cli")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("upstrem: https://c.example/\n", ':1:1: "upstrem" is not a console-proxy setting; did you mean "upstream"?'),
        ("port: 80\nstate_dir: /x\n", ':2:1: "state_dir" is not a console-proxy setting; did you mean "state-dir"?'),
        ("zzz: 1\n", ':1:1: "zzz" is not a console-proxy setting; expected a flag\'s name without "--".'),
        ("- port\n", ":1:1: the config file is not a mapping; expected keys named like the flags."),
        ("port: [1, 2]\n", ":1:1: port is a list; expected one value."),
        ("port: {a: 1}\n", ":1:1: port is a mapping; expected a value, or a list for a repeatable flag."),
    ],
)
def test_a_bad_key_is_one_sentence_with_its_place(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SettingsError) as caught:
        read_config_file(path)
    assert str(caught.value) == f"{path}{message}"


def test_a_bad_value_names_the_file_and_the_place(tmp_path: Path) -> None:
    path = write(tmp_path, "port: 80\nworkers: many\n")
    with pytest.raises(SettingsError) as caught:
        settings_from({}, HOME_ENV, read_config_file(path))
    assert str(caught.value) == f'{path}:2:1: workers is "many"; expected a whole number from 1 to 64.'


def test_a_missing_file_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        read_config_file(tmp_path / "nope.yaml")
    assert (
        str(caught.value)
        == f'--config "{tmp_path / "nope.yaml"}" cannot be read (No such file or directory); expected a YAML file.'
    )

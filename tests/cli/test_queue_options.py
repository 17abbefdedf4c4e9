"""`--queue`, `--queue-lease-s`, `--queue-require-aof` and `--workers`: parsed, checked, refused in one sentence."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from console_proxy.cli.main import main
from console_proxy.cli.options import settings_from
from console_proxy.core.errors import SettingsError

HOME_ENV = {"HOME": "/home/someone"}
UP = {"upstream": "http://127.0.0.1:9/c"}


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, ("sqlite", 30.0, False, 1)),
        ({**UP, "queue": "redis://127.0.0.1:6379/2", "workers": "4"}, ("redis://127.0.0.1:6379/2", 30.0, False, 4)),
        (
            {**UP, "queue": "rediss://cache.internal:6380", "queue_lease_s": "5"},
            ("rediss://cache.internal:6380", 5.0, False, 1),
        ),
        ({**UP, "queue": "redis://h/0", "queue_require_aof": "yes"}, ("redis://h/0", 30.0, True, 1)),
        (
            {**UP, "queue": "redis+sentinel://s1,s2:26380/main/1"},
            ("redis+sentinel://s1,s2:26380/main/1", 30.0, False, 1),
        ),
    ],
)
def test_queue_settings_are_parsed(options: dict[str, str], expected: tuple[object, ...]) -> None:
    settings = settings_from(options, HOME_ENV)
    assert (settings.queue, settings.queue_lease_s, settings.queue_require_aof, settings.workers) == expected


@pytest.mark.parametrize(
    ("options", "env", "message"),
    [
        (
            {**UP, "queue": "kafka://broker:9092"},
            {},
            '--queue is "kafka://broker:9092"; expected "sqlite", a redis://HOST:PORT/DB (or rediss://) URL, or redis+sentinel://HOST:PORT/SERVICE/DB.',
        ),
        (
            {**UP, "queue": "redis://h:6379/zero"},
            {},
            '--queue is "redis://h:6379/zero"; expected "sqlite", a redis://HOST:PORT/DB (or rediss://) URL, or redis+sentinel://HOST:PORT/SERVICE/DB.',
        ),
        (
            {**UP, "queue": "redis+sentinel://s1:26379"},
            {},
            '--queue is "redis+sentinel://s1:26379"; expected "sqlite", a redis://HOST:PORT/DB (or rediss://) URL, '
            "or redis+sentinel://HOST:PORT/SERVICE/DB.",
        ),
        (
            {"queue": "redis://h:6379/0"},
            {},
            '--queue is "redis://h:6379/0"; expected "sqlite" in local mode (a Redis queue needs --upstream).',
        ),
        (
            {**UP, "workers": "2"},
            {},
            '--workers is "2"; expected 1 with the SQLite spool or the local file (more need --queue redis://...).',
        ),
        (
            {},
            {"CONSOLE_PROXY_WORKERS": "3"},
            'CONSOLE_PROXY_WORKERS (--workers) is "3"; expected 1 with the SQLite spool or the local file '
            "(more need --queue redis://...).",
        ),
        ({**UP, "workers": "0"}, {}, '--workers is "0"; expected a whole number from 1 to 64.'),
    ],
)
def test_bad_queue_settings_are_refused_in_one_sentence(
    options: dict[str, str], env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError) as error:
        settings_from(options, {**HOME_ENV, **env})
    assert str(error.value) == message


def test_serve_refuses_workers_without_the_redis_queue(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["serve", "--workers", "2", "--port", "0"], env={"HOME": str(tmp_path)})
    assert (result.exit_code, result.stderr) == (
        2,
        '--workers is "2"; expected 1 with the SQLite spool or the local file (more need --queue redis://...).\n',
    )

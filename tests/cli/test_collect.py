"""`console-proxy collect` as an operator runs it: flags and variables, start-up lines, tokens, retention at start,
`collect erase` and `collect export`."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from support.collect import batch, cli_event, console_event, count_rows, installation, post, start_collect
from support.servers import clean_env

TOKEN = "gate-token-0123456789abcdef"


def run(tmp: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console_proxy", "collect", *args],
        capture_output=True,
        text=True,
        env=clean_env(tmp, env),
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--port", "99999"], {}, '--port is "99999"; expected a whole number from 0 to 65535.'),
        (
            ["--store", "mysql://db/x"],
            {},
            '--store is "mysql://db/x"; expected duckdb:///PATH or postgresql://USER@HOST:PORT/DATABASE.',
        ),
        (["--min-installations", "0"], {}, '--min-installations is "0"; expected a whole number from 1 to 1000000.'),
        (["--retention-days", "-3"], {}, '--retention-days is "-3"; expected a whole number from 1 to 36600.'),
        (
            [],
            {"CONSOLE_PROXY_COLLECT_PORT": "http"},
            'CONSOLE_PROXY_COLLECT_PORT (--port) is "http"; expected a whole number from 0 to 65535.',
        ),
        (
            [],
            {"CONSOLE_PROXY_COLLECT_MIN_INSTALATIONS": "3"},
            "CONSOLE_PROXY_COLLECT_MIN_INSTALATIONS is set but is "
            "not a collector setting; did you mean CONSOLE_PROXY_COLLECT_MIN_INSTALLATIONS?",
        ),
        (["--token-file", "/no/such/file"], {}, '--token-file is "/no/such/file"; expected an existing file.'),
        (["--host", "a b"], {}, '--host is "a b"; expected a host name or IP address.'),
        (
            ["erase", "--installation", "alice"],
            {},
            '--installation is "alice"; expected a UUID such as "11111111-2222-4333-8444-555555555555".',
        ),
    ],
)
def test_a_bad_flag_exits_2_with_one_sentence(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    done = run(tmp_path, *args, env=env)
    assert (done.returncode, done.stderr.strip(), done.stdout) == (2, message, "")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("# no tokens here\n\n", "holds no token; expected at least one, one a line."),
        (
            "good-token-0123456789\nshort\n",
            "has something other than a token on line 2; expected 16 to 512 visible ASCII characters without spaces.",
        ),
    ],
)
def test_a_bad_token_file_exits_2(tmp_path: Path, text: str, message: str) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(text)
    done = run(tmp_path, "--token-file", str(tokens), "--store", f"duckdb:///{tmp_path / 'c.duckdb'}")
    assert (done.returncode, done.stderr.strip()) == (2, f'--token-file "{tokens}" {message}')


def test_it_says_where_the_store_and_the_dashboard_are_and_takes_tokens(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# the gates of team A\n\n  {TOKEN}  \nsecond-token-0123456789\n")
    state = tmp_path / "state"
    collector = start_collect(
        tmp_path,
        env={
            "CONSOLE_PROXY_COLLECT_TOKEN_FILE": str(tokens),
            "CONSOLE_PROXY_COLLECT_STATE_DIR": str(state),
            "CONSOLE_PROXY_COLLECT_MIN_INSTALLATIONS": "3",
        },
    )
    try:
        envelope = batch("console", [console_event(installation(1))])
        assert post(collector.base, envelope).status_code == 401
        assert post(collector.base, envelope, token="second-token-0123456789").json()["stored"] == 1
    finally:
        assert collector.stop() == 0
    lines = collector.output().splitlines()
    base = collector.base
    assert lines[0] == f"console-proxy collect 0.2.0: taking batches at {base}/v1/batches"
    assert lines[1] == f"store: duckdb:///{state / 'collector.duckdb'} (DuckDB file)"
    assert lines[3:6] == [
        f"dashboard: {base}/ (no figure of fewer than 3 installations)",
        f"tokens: 2 from {tokens}; POST /v1/batches needs Authorization: Bearer",
        "retention: none; rows are kept until erased",
    ]
    assert count_rows(f"duckdb:///{state / 'collector.duckdb'}", "console_events") == 1


def stamp(days_ago: int) -> str:
    when = datetime.now(UTC) - timedelta(days=days_ago)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_retention_at_start_and_erase_leave_no_row_behind(tmp_path: Path) -> None:
    store = f"duckdb:///{tmp_path / 'c.duckdb'}"
    gone, kept = installation(1), installation(2)
    collector = start_collect(tmp_path, "--store", store)
    try:
        for who in (gone, kept):
            post(
                collector.base,
                batch("console", [console_event(who, timestamp=stamp(60)), console_event(who, timestamp=stamp(1))]),
            )
            post(collector.base, batch("cli", [cli_event(who, timestamp=stamp(2)), cli_event(who, flags=["bad"])]))
    finally:
        assert collector.stop() == 0
    assert [count_rows(store, t) for t in ("console_events", "cli_events", "bad_rows")] == [4, 2, 2]
    collector = start_collect(tmp_path, "--store", store, "--retention-days", "30")
    try:
        old = post(collector.base, batch("console", [console_event(kept, timestamp=stamp(31))]))
        assert old.json()["rejected"] == 1
    finally:
        assert collector.stop() == 0
    assert "retention: rows older than 30 days are deleted, at start and hourly" in collector.output()
    assert [count_rows(store, t) for t in ("console_events", "cli_events", "bad_rows")] == [2, 2, 3]
    done = run(tmp_path, "erase", "--installation", gone.upper(), "--store", store)
    assert (done.returncode, done.stdout.strip()) == (
        0,
        f"erased 3 rows of installation {gone} (console_events 1, server_metrics 0, cli_events 1, bad_rows 1)",
    )
    again = run(tmp_path, "erase", "--installation", gone, env={"CONSOLE_PROXY_COLLECT_STORE": store})
    assert again.stdout.strip().startswith(f"erased 0 rows of installation {gone} ")
    assert [count_rows(store, t) for t in ("console_events", "cli_events", "bad_rows")] == [1, 1, 2]


def test_export_writes_one_file_per_table(tmp_path: Path) -> None:
    store = f"duckdb:///{tmp_path / 'c.duckdb'}"
    done = run(tmp_path, "export", "--format", "csv", "--out", str(tmp_path / "out"), "--store", store)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        str(tmp_path / "out" / f"{t}.csv")
        for t in ("console_events", "server_metrics", "cli_events", "bad_rows", "batches")
    ]
    assert (tmp_path / "out" / "console_events.csv").read_text().startswith("event_id,topic,event_type,url,")


def test_a_store_in_use_by_a_running_collector_is_one_sentence(tmp_path: Path) -> None:
    store = f"duckdb:///{tmp_path / 'c.duckdb'}"
    collector = start_collect(tmp_path, "--store", store)
    try:
        done = run(tmp_path, "erase", "--installation", installation(1), "--store", store)
    finally:
        assert collector.stop() == 0
    assert done.returncode == 1
    assert done.stderr.startswith(f"the DuckDB file {tmp_path / 'c.duckdb'} cannot be opened (")
    assert done.stderr.strip().endswith("; expected a store this collector can open and write.")
    assert len(done.stderr.strip().splitlines()) == 1

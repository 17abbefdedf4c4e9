"""Both stores, the same tests: a real DuckDB file and a real PostgreSQL database."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from console_proxy.collector.dashboard import figures
from console_proxy.collector.dashboard_sql import read_aggregates
from console_proxy.collector.envelope import read_envelope
from console_proxy.collector.intake import take_in
from console_proxy.collector.store import Answer, KeyReusedError, SqlStore, fingerprint, open_store
from console_proxy.collector.tables import ALL_TABLES, BAD_ROWS, CLI_EVENTS, CONSOLE_EVENTS, SERVER_METRICS

from support.collect import (  # noqa: F401 -- fixtures
    batch,
    cli_event,
    console_event,
    installation,
    postgres,
    server_event,
    store_url,
    vocabulary,
)

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
STAMP = "2026-12-02T12:00:00.000Z"
VOCAB = vocabulary()


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:  # noqa: F811
    opened = open_store(store_url)
    opened.create_tables()
    try:
        yield opened
    finally:
        opened.close()


def write(store: SqlStore, envelope: dict[str, object], key: str | None = None) -> Answer:
    body = json.dumps(envelope).encode()
    parsed = read_envelope(body)
    intake = take_in(parsed, VOCAB, now=NOW, received_at=STAMP)
    return store.write_once(intake, parsed.batch_id, key, fingerprint(body), STAMP)


def counts(answer: Answer) -> tuple[int, int, int]:
    return answer.stored, answer.duplicates, answer.rejected


def test_a_batch_twice_and_an_overlapping_batch_store_each_event_once(store: SqlStore) -> None:
    events = [console_event(installation(i)) for i in range(4)]
    first = batch("console", events[:3])
    assert counts(write(store, first)) == (3, 0, 0)
    assert counts(write(store, first)) == (0, 3, 0)
    assert counts(write(store, batch("console", [*events[1:], events[3]]))) == (1, 3, 0)
    assert store.count(CONSOLE_EVENTS) == 4


def test_an_idempotency_key_gets_its_first_answer_again(store: SqlStore) -> None:
    envelope = batch("cli", [cli_event(installation(1)), cli_event(installation(1), flags=["x"])])
    first = write(store, envelope, key=str(envelope["batch_id"]))
    again = write(store, envelope, key=str(envelope["batch_id"]))
    assert counts(first) == counts(again) == (1, 0, 1)
    assert (first.replayed, again.replayed) == (False, True)
    assert store.count(BAD_ROWS) == 1
    with pytest.raises(KeyReusedError):
        write(store, batch("cli", []), key=str(envelope["batch_id"]))


def test_each_topic_goes_to_its_table_and_bad_rows_keep_their_reason(store: SqlStore) -> None:
    bad = console_event(installation(1), url="/data/prod/schema/public")
    answer = write(store, batch("console", [console_event(installation(1)), bad]))
    write(store, batch("server_metrics_v2_test", [server_event(installation(1))]))
    write(store, batch("cli", [cli_event(installation(2))]))
    unknown = batch("customer_data", [{"email": "alice@example.com"}, 42])
    assert counts(write(store, unknown)) == (0, 0, 2)
    assert counts(answer) == (1, 0, 1)
    assert [store.count(t) for t in (CONSOLE_EVENTS, SERVER_METRICS, CLI_EVENTS)] == [1, 1, 1]
    rows = store.query(f"SELECT position, topic, reason, row_json FROM {BAD_ROWS.name} ORDER BY reason, position")
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (1, "console", "bad_url"),
        (0, None, "unknown_topic"),
        (1, None, "unknown_topic"),
    ]
    assert '"/data/prod/schema/public"' in rows[0][3]
    assert store.query(f"SELECT topic FROM {SERVER_METRICS.name}") == [("server_metrics_v2_test",)]


def test_erase_removes_every_row_of_one_installation(store: SqlStore) -> None:
    gone, kept = installation(1), installation(2)
    write(store, batch("console", [console_event(gone), console_event(kept), console_event(None, cli_uuid=gone)]))
    write(store, batch("server_metrics_v2", [server_event(gone), server_event(kept)]))
    write(store, batch("cli", [cli_event(gone), cli_event(installation(3), server_uuid=gone), cli_event(kept)]))
    write(store, batch("console", [console_event(gone.upper(), url="/raw/route"), console_event(kept, url="/x")]))
    assert store.erase(gone) == {"console_events": 2, "server_metrics": 1, "cli_events": 2, "bad_rows": 1}
    assert store.erase(gone) == {"console_events": 0, "server_metrics": 0, "cli_events": 0, "bad_rows": 0}
    for table in (CONSOLE_EVENTS, SERVER_METRICS, CLI_EVENTS, BAD_ROWS):
        assert store.count(table) == 1, table.name
        text = repr(store.query(f"SELECT * FROM {table.name}")).lower()
        assert gone not in text and kept in text


def test_retention_removes_older_rows_and_leaves_newer(store: SqlStore) -> None:
    old, new = "2026-10-01T10:00:00.000Z", "2026-12-01T10:00:00.000Z"
    write(
        store,
        batch(
            "console", [console_event(installation(1), timestamp=old), console_event(installation(1), timestamp=new)]
        ),
    )
    write(store, batch("server_metrics_v2", [server_event(installation(1), timestamp=old)]))
    write(store, batch("cli", [cli_event(installation(1), timestamp=old), cli_event(installation(1), is_error=3)]))
    removed = store.expire(datetime(2026, 11, 1, tzinfo=UTC), NOW - timedelta(days=7))
    assert removed == {"batches": 0, "console_events": 1, "server_metrics": 1, "cli_events": 1, "bad_rows": 0}
    assert store.expire(NOW + timedelta(days=1), NOW - timedelta(days=7))["bad_rows"] == 1
    assert [store.count(t) for t in (CONSOLE_EVENTS, SERVER_METRICS, CLI_EVENTS, BAD_ROWS)] == [0, 0, 0, 0]


def test_export_writes_every_table_in_both_formats(store: SqlStore, tmp_path: Path) -> None:
    write(store, batch("cli", [cli_event(installation(1), flags=["endpoint", "envfile"])]))
    write(store, batch("server_metrics_v2", [server_event(installation(1))]))
    parquet = store.export("parquet", tmp_path / "p")
    assert sorted(p.name for p in parquet) == sorted(f"{t.name}.parquet" for t in ALL_TABLES)
    with duckdb.connect() as con:
        flags = con.execute(f"SELECT flags, is_error FROM '{tmp_path / 'p' / 'cli_events.parquet'}'").fetchall()
        metrics = con.execute(f"SELECT metrics->>'tables' FROM '{tmp_path / 'p' / 'server_metrics.parquet'}'")
        assert (flags, metrics.fetchall()) == ([(["endpoint", "envfile"], False)], [("12",)])
    written = store.export("csv", tmp_path / "c")
    assert len(written) == len(ALL_TABLES)
    with open(tmp_path / "c" / "cli_events.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["cli_uuid"], r["command"], r["flags"]) for r in rows] == [
        (installation(1), "hasura migrate apply", '["endpoint","envfile"]')
    ]


def test_the_dashboard_queries_run_on_the_store(store: SqlStore) -> None:
    for i in range(6):
        write(store, batch("console", [console_event(installation(i)), console_event(installation(i))]))
        write(store, batch("server_metrics_v2", [server_event(installation(i))]))
        write(store, batch("cli", [cli_event(installation(i), is_error=i < 5)]))
    write(store, batch("console", [console_event(installation(9), url="/settings/about")]))
    data = figures(read_aggregates(store, NOW - timedelta(days=90)), min_installations=5, window_days=90)
    assert data["installations"] == 7
    assert data["top_pages"] == {
        "rows": [{"url": "/data/SOURCE/schema/SCHEMA/tables/TABLE/browse", "events": 12, "installations": 6}],
        "withheld": 1,
    }
    assert data["cli_commands"]["rows"] == [
        {"command": "hasura migrate apply", "events": 6, "installations": 6, "error_rate": 0.8333}
    ]
    assert data["server_versions"]["rows"] == [{"version": "v2.40.0", "installations": 7}]
    assert data["events_by_day"]["series"] == [
        {"topic": "cli", "events": [6]},
        {"topic": "console", "events": [13]},
        {"topic": "server_metrics_v2", "events": [6]},
    ]
    assert {"name": "tables", "buckets": [{"bucket": "10-99", "installations": 6}]} in data["server_counts"]["metrics"]

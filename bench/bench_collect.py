"""The collector's intake from a backlog: events stored per second into DuckDB and into PostgreSQL, against a
plain bulk insert of the same rows in the same run (the ceiling), and a row-at-a-time insert (the floor).

Usage:

    .venv/bin/python bench/bench_collect.py [--events 200000] [--batch 500] [--senders 4] [--skip postgresql]

- collector: `console-proxy collect` on a fresh store; SENDERS clients post the backlog as the gate's forwarder
  would (one topic a batch, Idempotency-Key, one connection each), as fast as answers come back. Events stored
  per second is the backlog over the wall time from the first request to the last answer; every answer is checked
  (stored == events) and the table is counted at the end.
- bulk ceiling: the same rows, already as rows, into an empty table of the same schema in one transaction, no
  HTTP and no checks, the fastest plain way each engine has: DuckDB's read_json of a newline-delimited file,
  PostgreSQL's COPY FROM STDIN.
- the collector's statement (DuckDB: unnest of a JSON parameter cast to rows; PostgreSQL: jsonb_populate_recordset)
  for the whole backlog in one transaction, without ON CONFLICT.
- row: the first 2,000 rows inserted one statement each (executemany), scaled to a rate.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from console_proxy.collector.envelope import read_envelope
from console_proxy.collector.house import load_rules
from console_proxy.collector.intake import take_in
from console_proxy.collector.store import open_store
from console_proxy.collector.tables import CONSOLE_EVENTS
from console_proxy.collector.vocabulary import vocabulary_of

from support.collect import batch, console_event, installation, start_collect
from support.postgres_server import running_postgres

ROUTES = [
    "/data/SOURCE/schema/SCHEMA/tables/TABLE/browse",
    "/data/SOURCE/schema/SCHEMA/tables/TABLE/modify",
    "/settings/about",
    "/api/api-explorer",
    "/events/data/EVENT_TRIGGER/logs",
    "/data/sql",
]
ACTIONS = ["Data/SET_TABLE", "Data/FETCH_SCHEMA", "@@router/LOCATION_CHANGE", "ApiExplorer/MAKING_API_REQUEST"]
ROW_SAMPLE = 2000


def backlog(events: int, size: int) -> list[dict[str, Any]]:
    out = []
    for start in range(0, events, size):
        rows = [
            console_event(installation(n % 50), url=ROUTES[n % len(ROUTES)], event_type=ACTIONS[n % len(ACTIONS)])
            for n in range(start, min(events, start + size))
        ]
        out.append(batch("console", rows))
    return out


def through_collector(url: str, batches: list[dict[str, Any]], senders: int, tmp: Path) -> float:
    collector = start_collect(tmp, "--store", url, "--max-batch-events", str(max(len(b["data"]) for b in batches)))
    errors: list[str] = []
    try:

        def send(mine: list[dict[str, Any]]) -> None:
            with httpx.Client(timeout=60) as client:
                for envelope in mine:
                    headers = {"content-type": "application/json", "idempotency-key": envelope["batch_id"]}
                    answer = client.post(collector.base + "/v1/batches", json=envelope, headers=headers)
                    if answer.status_code != 200 or answer.json()["stored"] != len(envelope["data"]):
                        errors.append(f"{answer.status_code} {answer.text[:80]}")

        threads = [threading.Thread(target=send, args=(batches[i::senders],)) for i in range(senders)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    finally:
        collector.stop()
    if errors:
        raise SystemExit(f"the collector refused batches: {errors[:3]}")
    store = open_store(url)
    try:
        count = store.count(CONSOLE_EVENTS)
    finally:
        store.close()
    total = sum(len(b["data"]) for b in batches)
    if count != total:
        raise SystemExit(f"the store holds {count} events, {total} were sent")
    return total / elapsed


def rows_of(batches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    vocab = vocabulary_of(load_rules())
    import json
    from datetime import UTC, datetime

    rows = []
    for envelope in batches:
        intake = take_in(
            read_envelope(json.dumps(envelope).encode()),
            vocab,
            now=datetime.now(UTC),
            received_at="2026-12-02T00:00:00.000Z",
        )
        rows.extend(intake.rows)
    return rows


def bulk_duckdb(path: Path, rows: list[dict[str, Any]]) -> tuple[float, float, float]:
    """(the fastest plain bulk insert: read_json of a file; the collector's statement for all rows at once; one
    statement a row)."""
    import duckdb

    from console_proxy.collector.house import dumps

    kinds = {"uuid": "UUID", "text": "VARCHAR", "timestamp": "TIMESTAMP"}
    columns = "{" + ", ".join(f"'{c.name}': '{kinds[c.kind]}'" for c in CONSOLE_EVENTS.columns) + "}"
    lines = path.with_suffix(".ndjson")
    lines.write_bytes(b"\n".join(dumps(r) for r in rows))
    rates = []
    with duckdb.connect(str(path)) as con:
        con.execute(CONSOLE_EVENTS.create("duckdb"))
        for statement, params in [
            (
                f"INSERT INTO {CONSOLE_EVENTS.name} SELECT * FROM read_json('{lines}', format = 'newline_delimited', "
                f"columns = {columns})",
                [],
            ),
            (
                f"INSERT INTO {CONSOLE_EVENTS.name} BY NAME SELECT unnest(CAST(CAST(? AS JSON) AS "
                f"{CONSOLE_EVENTS.row_struct()}[]), recursive := true)",
                [dumps(rows).decode()],
            ),
        ]:
            con.execute(f"DELETE FROM {CONSOLE_EVENTS.name}")
            con.execute("CHECKPOINT")
            started = time.perf_counter()
            con.execute("BEGIN TRANSACTION")
            con.execute(statement, params)
            con.execute("COMMIT")
            rates.append(len(rows) / (time.perf_counter() - started))
        con.execute(f"DELETE FROM {CONSOLE_EVENTS.name}")
        sample = [tuple(r[c] for c in CONSOLE_EVENTS.column_names) for r in rows[:ROW_SAMPLE]]
        marks = ", ".join("?" for _ in CONSOLE_EVENTS.column_names)
        started = time.perf_counter()
        con.executemany(f"INSERT INTO {CONSOLE_EVENTS.name} VALUES ({marks})", sample)
        row = len(sample) / (time.perf_counter() - started)
    return rates[0], rates[1], row


def bulk_postgres(url: str, rows: list[dict[str, Any]]) -> tuple[float, float, float]:
    """(COPY FROM STDIN of every row; the collector's statement for all rows at once; one statement a row)."""
    import psycopg

    from console_proxy.collector.house import dumps

    columns = CONSOLE_EVENTS.column_names
    quoted = ", ".join(f'"{c}"' for c in columns)
    with psycopg.connect(url) as conn:
        conn.execute(CONSOLE_EVENTS.create("postgresql"))
        conn.commit()
        values = [tuple(r[c] for c in columns) for r in rows]
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy(f"COPY {CONSOLE_EVENTS.name} ({quoted}) FROM STDIN") as copy:
            for value in values:
                copy.write_row(value)
        conn.commit()
        bulk = len(rows) / (time.perf_counter() - started)
        conn.execute(f"DELETE FROM {CONSOLE_EVENTS.name}")
        conn.commit()
        started = time.perf_counter()
        conn.execute(
            f"INSERT INTO {CONSOLE_EVENTS.name} SELECT * FROM jsonb_populate_recordset("
            f"NULL::{CONSOLE_EVENTS.name}, %s::jsonb)",
            [dumps(rows).decode()],
        )
        conn.commit()
        same = len(rows) / (time.perf_counter() - started)
        conn.execute(f"DELETE FROM {CONSOLE_EVENTS.name}")
        conn.commit()
        marks = ", ".join("%s" for _ in columns)
        started = time.perf_counter()
        with conn.cursor() as cur:
            for value in values[:ROW_SAMPLE]:
                cur.execute(f"INSERT INTO {CONSOLE_EVENTS.name} ({quoted}) VALUES ({marks})", value)
                conn.commit()
        row = ROW_SAMPLE / (time.perf_counter() - started)
    return bulk, same, row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=500, help="events a batch (the gate's default is 500)")
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--skip", action="append", default=[], choices=["duckdb", "postgresql"])
    args = parser.parse_args()
    batches = backlog(args.events, args.batch)
    rows = rows_of(batches)
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        if "duckdb" not in args.skip:
            collected = through_collector(f"duckdb:///{tmp / 'collector.duckdb'}", batches, args.senders, tmp)
            results.append(("duckdb", collected, *bulk_duckdb(tmp / "bulk.duckdb", rows)))
        if "postgresql" not in args.skip:
            with running_postgres() as server:
                url = server.create_database("collector")
                collected = through_collector(url, batches, args.senders, tmp)
                results.append(("postgresql", collected, *bulk_postgres(server.create_database("bulk"), rows)))
    print(f"{args.events} events in batches of {args.batch}, {args.senders} senders; run {uuid.uuid4().hex[:8]}")
    print("events stored per second:")
    print(
        "| store | collector | bulk ceiling | collector / ceiling | collector's statement, all rows at once |"
        " collector / that | one statement a row | ceiling / row |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, collected, bulk, same, row in results:
        print(
            f"| {name} | {collected:,.0f} | {bulk:,.0f} | {collected / bulk:.2f} | {same:,.0f} | "
            f"{collected / same:.2f} | {row:,.0f} | {bulk / row:,.0f}x |"
        )


if __name__ == "__main__":
    main()

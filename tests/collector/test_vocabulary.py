"""The collector's row checks: a row a gate could send passes, and each kind of hostile row gets its reason."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from console_proxy.collector.routes import RouteShapes, templates_of
from console_proxy.collector.tables import CLI_EVENTS, CONSOLE_EVENTS, SERVER_METRICS, Table
from console_proxy.collector.vocabulary import check_row

from support.collect import cli_event, console_event, installation, server_event, vocabulary

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
VOCAB = vocabulary()
SERVER = installation(1)

GOOD = [
    (CONSOLE_EVENTS, console_event(SERVER)),
    (CONSOLE_EVENTS, console_event(None, url="/", event_type="@@router/LOCATION_CHANGE")),
    (CONSOLE_EVENTS, console_event(SERVER, url="/UNKNOWN", event_type="UNKNOWN")),
    (CONSOLE_EVENTS, console_event(SERVER, url="/data/manage/source/SOURCE/table/browse?table=TABLE")),
    (
        CONSOLE_EVENTS,
        console_event(
            SERVER, url="/data/SOURCE/schema/SCHEMA/tables/TABLE/permissions?permission_type=select&role=ROLE"
        ),
    ),
    (CONSOLE_EVENTS, console_event(SERVER, url="/data/edit?database=SOURCE&driver=postgres")),
    (CONSOLE_EVENTS, console_event(SERVER, console_type="pro-lite", console_mode="cli", server_version=None)),
    (SERVER_METRICS, server_event(SERVER)),
    (SERVER_METRICS, server_event(None, metrics={}, backend_type="other", db_kind=None, server_version=None)),
    (CLI_EVENTS, cli_event(installation(2))),
    (CLI_EVENTS, cli_event(installation(2), command="UNKNOWN", flags=[], is_error=None, os_arch="other")),
    (CLI_EVENTS, cli_event(installation(2), command="hasura console", flags=["admin-secret", "envfile"])),
]


@pytest.mark.parametrize(("table", "row"), GOOD)
def test_a_row_a_gate_could_send_passes(table: Table, row: dict[str, Any]) -> None:
    assert check_row(row, table, VOCAB, NOW, None) is None


# Hostile rows, each with the one reason it is refused.
HOSTILE: list[tuple[Table, object, str]] = [
    (CONSOLE_EVENTS, console_event(SERVER, url="/data/prod_db/schema/public/tables/users/browse"), "bad_url"),
    (CONSOLE_EVENTS, console_event(SERVER, url="/console/data/SOURCE"), "bad_url"),
    (CONSOLE_EVENTS, console_event(SERVER, url="/data/SOURCE?email=alice@example.com"), "bad_url"),
    (CONSOLE_EVENTS, console_event(SERVER, url="/data/manage/source/SOURCE/table/browse?table=users"), "bad_url"),
    (CONSOLE_EVENTS, console_event(SERVER, url="/data/edit?driver=postgres&database=SOURCE"), "bad_url"),
    (CONSOLE_EVENTS, console_event(SERVER, url="/data/edit?driver=oracle9"), "bad_url"),
    (CONSOLE_EVENTS, console_event(SERVER, url="/data/SOURCE/"), "bad_url"),
    (CONSOLE_EVENTS, console_event(SERVER, url="/data/SOURCE?"), "bad_url"),
    (CONSOLE_EVENTS, console_event(SERVER, url="data"), "bad_url"),
    (CONSOLE_EVENTS, console_event(SERVER, url="/" + "data/" * 500), "bad_url"),
    (CONSOLE_EVENTS, console_event(SERVER, url=12), "bad_url"),
    (CONSOLE_EVENTS, console_event(SERVER, event_type="Data/SET_ALICE AT CORP"), "bad_event_type"),
    (CONSOLE_EVENTS, console_event(SERVER, event_type="select * from users"), "bad_event_type"),
    (CONSOLE_EVENTS, console_event(SERVER, event_type="App/ONGOING_REQUEST"), "bad_event_type"),
    (CONSOLE_EVENTS, console_event(SERVER, event_type=None), "bad_event_type"),
    (CONSOLE_EVENTS, console_event(SERVER, console_mode="alice"), "bad_console_mode"),
    (CONSOLE_EVENTS, console_event(SERVER, console_type="enterprise"), "bad_console_type"),
    (CONSOLE_EVENTS, console_event("alice@example.com"), "bad_server_uuid"),
    (CONSOLE_EVENTS, console_event(SERVER, cli_uuid="6f1c2b3a9d4e4f5a8b6c000000000001"), "bad_cli_uuid"),
    (CONSOLE_EVENTS, console_event(SERVER, server_version="v2.40.0-my secret build"), "bad_server_version"),
    (CONSOLE_EVENTS, console_event(SERVER, server_version=2.4), "bad_server_version"),
    (CONSOLE_EVENTS, console_event(SERVER, data={"table": "users"}), "bad_data"),
    (CONSOLE_EVENTS, console_event(SERVER, payload={"email": "alice@example.com"}), "unknown_field"),
    (CONSOLE_EVENTS, {k: v for k, v in console_event(SERVER).items() if k != "url"}, "missing_field"),
    (CONSOLE_EVENTS, console_event(SERVER, event_id="alice"), "bad_event_id"),
    (CONSOLE_EVENTS, console_event(SERVER, timestamp="yesterday"), "bad_timestamp"),
    (CONSOLE_EVENTS, console_event(SERVER, timestamp="2026-02-30T10:00:00.000Z"), "bad_timestamp"),
    (CONSOLE_EVENTS, console_event(SERVER, timestamp="2026-12-01T10:00:00Z"), "bad_timestamp"),
    (CONSOLE_EVENTS, console_event(SERVER, timestamp="\uff12\uff10\uff12\uff16-12-01T10:00:00.000Z"), "bad_timestamp"),
    (CONSOLE_EVENTS, console_event(SERVER, timestamp="2027-12-01T10:00:00.000Z"), "timestamp_in_future"),
    (CONSOLE_EVENTS, "Data/SET_TABLE", "not_an_object"),
    (CONSOLE_EVENTS, [console_event(SERVER)], "not_an_object"),
    (SERVER_METRICS, server_event(SERVER, metrics={"tables": "12"}), "bad_metrics"),
    (SERVER_METRICS, server_event(SERVER, metrics={"tables": True}), "bad_metrics"),
    (SERVER_METRICS, server_event(SERVER, metrics={"tables": 5551234567}), "bad_metrics"),
    (SERVER_METRICS, server_event(SERVER, metrics={"tables": -1}), "bad_metrics"),
    (SERVER_METRICS, server_event(SERVER, metrics={"tables": 1.5}), "bad_metrics"),
    (SERVER_METRICS, server_event(SERVER, metrics={"relationships": {"manual": 1, "secret": 2}}), "bad_metrics"),
    (SERVER_METRICS, server_event(SERVER, metrics={"relationships": {}}), "bad_metrics"),
    (SERVER_METRICS, server_event(SERVER, metrics={"pg_version": 15}), "unknown_metric"),
    (SERVER_METRICS, server_event(SERVER, metrics=[1, 2]), "bad_metrics"),
    (SERVER_METRICS, server_event(SERVER, backend_type="acme_customer_db"), "bad_backend_type"),
    (SERVER_METRICS, server_event(SERVER, db_kind=7), "bad_db_kind"),
    (SERVER_METRICS, server_event(SERVER, console_mode="server"), "unknown_field"),
    (CLI_EVENTS, cli_event(installation(2), command="hasura migrate apply --endpoint https://db.corp"), "bad_command"),
    (CLI_EVENTS, cli_event(installation(2), command="hasura secret-plugin"), "bad_command"),
    (CLI_EVENTS, cli_event(installation(2), flags=["admin-secret=hunter2"]), "bad_flags"),
    (CLI_EVENTS, cli_event(installation(2), flags=["version", "endpoint"]), "bad_flags"),
    (CLI_EVENTS, cli_event(installation(2), flags=["endpoint", "endpoint"]), "bad_flags"),
    (CLI_EVENTS, cli_event(installation(2), command="UNKNOWN", flags=["endpoint"]), "bad_flags"),
    (CLI_EVENTS, cli_event(installation(2), flags="endpoint"), "bad_flags"),
    (CLI_EVENTS, cli_event(installation(2), is_error="yes"), "bad_is_error"),
    (CLI_EVENTS, cli_event(installation(2), is_error=1), "bad_is_error"),
    (CLI_EVENTS, cli_event(installation(2), os_platform="Alice's MacBook"), "bad_os_platform"),
    (CLI_EVENTS, cli_event(installation(2), os_arch="x86_64"), "bad_os_arch"),
    (CLI_EVENTS, cli_event(installation(2), cli_version="dev-build-of-alice"), "bad_cli_version"),
    (CLI_EVENTS, cli_event(installation(2), server_version="latest"), "bad_server_version"),
    (CLI_EVENTS, cli_event(installation(2), error={"statement": "select secret"}), "unknown_field"),
]


@pytest.mark.parametrize(("table", "row", "reason"), HOSTILE)
def test_a_hostile_row_is_refused_with_its_reason(table: Table, row: object, reason: str) -> None:
    assert check_row(row, table, VOCAB, NOW, None) == reason


def test_a_row_older_than_retention_is_refused() -> None:
    row = console_event(SERVER, timestamp="2026-10-01T10:00:00.000Z")
    assert check_row(row, CONSOLE_EVENTS, VOCAB, NOW, datetime(2026, 11, 1, tzinfo=UTC)) == "older_than_retention"
    assert check_row(row, CONSOLE_EVENTS, VOCAB, NOW, datetime(2026, 9, 1, tzinfo=UTC)) is None


def test_every_anonymized_route_of_the_gate_is_a_route_shape(default_rules: Any) -> None:
    # Whatever the gate makes of a route (the shipped templates' own test routes), the collector takes.
    raw = [
        "/console/data/db1/schema/s1/tables/t1/browse",
        "/console/data/manage/source/my%20db?tab=tables",
        "/console/actions/manage/createOrder/modify",
        "/console/settings/metadata-status?is_redirected=true",
        "/console/data/v2/manage/table/browse?database=d&table=%7B%7D&driver=mssql&x=1",
        "/console/no/such/page",
        "",
        "/console/events/data/trig/logs",
        "/console/data/default/schema/public/functions/f/permissions",
    ]
    shapes = VOCAB.routes
    for route in raw:
        assert default_rules.anonymize(route) in shapes, route


def test_route_shapes_follow_enumerations_and_query_keys() -> None:
    shapes = RouteShapes(
        templates_of({"routes": ["/a/{X}", {"path": "/b/{OP: one|two}", "query": {"k": "{K: v1|v2}", "z": "{Z}"}}]}),
        "/UNKNOWN",
    )
    assert [
        r in shapes
        for r in [
            "/a/X",
            "/a/Y",
            "/b/one",
            "/b/OP",
            "/b/three",
            "/b/two?k=v1&z=Z",
            "/b/two?k=v3",
            "/b/two?z=Z&k=K",
            "/b/two?k=K&k=K",
            "/UNKNOWN",
            "/",
        ]
    ] == [True, False, True, True, False, True, False, False, False, True, False]

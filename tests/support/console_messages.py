"""Messages as each era of the Hasura console sends them (docs/consoles.md), with a canary in every free field.

Shared by the console source's unit tests and the WebSocket session tests.
"""

from __future__ import annotations

import json
from typing import Any

CANARY = "canary-3f1d"
CANARY_UUID = "99999999-8888-4777-8666-555555555555"
PREFIX = "/console"


def redux(topic: str, event_type: str, url: str, *, data: object = None, version: str = "v2.36.0") -> dict[str, Any]:
    """A v1.x/v2.x message: one Redux action (telemetry/index.ts)."""
    return {
        "topic": topic,
        "data": {
            "server_version": version,
            "event_type": event_type,
            "url": url,
            "console_mode": "server",
            "cli_uuid": CANARY_UUID,
            "server_uuid": CANARY_UUID,
            "data": data,
        },
    }


def explicit(
    topic: str, event_type: str, url: str, event_data: object, *, console_type: object = "oss"
) -> dict[str, Any]:
    """A message of the newest console: one explicit event (telemetry/client.ts)."""
    return {
        "topic": topic,
        "data": {
            "server_version": "v2.40.0",
            "url": url,
            "console_mode": "cli",
            "console_type": console_type,
            "cli_uuid": CANARY_UUID,
            "server_uuid": CANARY_UUID,
            "event_type": event_type,
            "event_data": event_data,
        },
    }


# (message, what is kept of it: (topic, event_type, url, console_type) or None, the reason when it is dropped)
ERAS: list[tuple[dict[str, Any], tuple[str, str, str, str | None] | None, str | None]] = [
    # v1.x: a page view on the v1 data pages, the console's own placeholders in the URL
    (
        redux(
            "console", "@@router/LOCATION_CHANGE", f"/data/schema/{CANARY}/tables/TABLE_NAME/browse", version="v1.3.3"
        ),
        ("console", "@@router/LOCATION_CHANGE", "/data/schema/SCHEMA/tables/TABLE/browse", None),
        None,
    ),
    # v2.x: an action on a database page (the clean-up leaves the database name raw)
    (
        redux("console", "Data/SET_TABLE", f"/data/{CANARY}/schema/SCHEMA_NAME/tables/TABLE_NAME/modify"),
        ("console", "Data/SET_TABLE", "/data/SOURCE/schema/SCHEMA/tables/TABLE/modify", None),
        None,
    ),
    # v2.x: the index page, which the clean-up sends as ""
    (redux("console", "@@router/LOCATION_CHANGE", ""), ("console", "@@router/LOCATION_CHANGE", "/", None), None),
    # v2.x: a runtime error, its message and stack in data
    (
        redux("console", "Main/RUN_TIME_ERROR", "/settings/about", data={"message": CANARY, "stack": CANARY}),
        ("console", "Main/RUN_TIME_ERROR", "/settings/about", None),
        None,
    ),
    # v2.x: an action page as the clean-up writes it
    (
        redux("console", "Actions/Add/SET_ACTION_DEFINITION", "/actions$ACTION_NAME/modify"),
        ("console", "Actions/Add/SET_ACTION_DEFINITION", "/actions$ACTION_NAME/modify", None),
        None,
    ),
    # v2.x: the console's own drop list, and names on no allow entry: sent as the token
    (redux("console", "RNS_SHOW_NOTIFICATION", "/data/manage"), None, "action_dropped"),
    (redux("console", f"Data/SET_TABLE {CANARY}", "/data/manage"), ("console", "UNKNOWN", "/data/manage", None), None),
    (redux("console", "bob@example.com", "/data/manage"), ("console", "UNKNOWN", "/data/manage", None), None),
    # v2.x development build
    (
        redux("console_test", "Data/SET_TABLE", f"/data/{CANARY}/sql"),
        ("console_test", "Data/SET_TABLE", "/data/SOURCE/sql", None),
        None,
    ),
    # newest: every kind of explicit event
    (
        explicit("console-v2", "CLICK_EVENT", f"{PREFIX}/data/manage/source/{CANARY}", {"id": CANARY}),
        ("console", "CLICK_EVENT", "/data/manage/source/SOURCE", "oss"),
        None,
    ),
    (
        explicit("console-v2", "INPUT_CHANGE_EVENT", "/api/rest/create", {"id": CANARY}, console_type="pro-lite"),
        ("console", "INPUT_CHANGE_EVENT", "/api/rest/create", "pro-lite"),
        None,
    ),
    (
        explicit(
            "console-v2",
            "CONNECT_DB",
            "/data/manage/connect",
            {"db_kind": "postgres", "entity_count": 12, "entity_hash": CANARY},
            console_type="cloud",
        ),
        ("console", "CONNECT_DB", "/data/manage/connect", "cloud"),
        None,
    ),
    (
        explicit("console-v2", "SET_FEATURE_FLAG", "/settings/feature-flags", {"feature_flag": CANARY, "value": True}),
        ("console", "SET_FEATURE_FLAG", "/settings/feature-flags", "oss"),
        None,
    ),
    (
        explicit("console-v2", "RUN_TIME_ERROR", "", {"message": CANARY, "stack": CANARY}, console_type=CANARY),
        ("console", "RUN_TIME_ERROR", "/", None),
        None,
    ),
    # newest development build, a console_type outside the enumeration
    (
        explicit(
            "console-test-v2",
            "CLICK_EVENT",
            f"/data/native-queries/{CANARY}/{CANARY}",
            {"id": CANARY},
            console_type=["pro"],
        ),
        ("console_test", "CLICK_EVENT", "/data/native-queries/SOURCE/NATIVE_QUERY", None),
        None,
    ),
]


def text(message: dict[str, Any]) -> str:
    return json.dumps(message)

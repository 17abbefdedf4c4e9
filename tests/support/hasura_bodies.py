"""The Hasura server's and CLI's telemetry bodies, era by era, as their sources send them (field names from
Hasura's Telemetry.hs, Telemetry/Types.hs and cli/telemetry/telemetry.go), each with a canary where free text goes.

Shared by the sources' unit tests and the end-to-end tests of the gate's server, CLI and collector paths.
"""

from __future__ import annotations

from typing import Any

# A JSON document as `json.loads` types it: the tests reach into a body's nested objects as a reader of the JSON
# would, without a TypedDict per era for data that only ever goes out as JSON.
JSONObject = dict[str, Any]

SERVER_BODY_UUID = "6a9e7d1c-3b5f-4e2a-9c8d-0f1e2d3c4b5a"

# As Hasura.Server.Telemetry sent them, era by era (field names from Telemetry.hs and Telemetry/Types.hs).
V1_ALPHA: JSONObject = {
    "topic": "server",
    "data": {
        "db_uid": SERVER_BODY_UUID,
        "instance_uid": "6799360d-a431-40c5-9f68-24592a9f07df",
        "version": "v1.0.0-alpha36",
        "ci": "TRAVIS",
        "metrics": {
            "views": 1, "tables": 2, "functions": 1,
            "permissions": {"roles": 1, "delete": 2, "insert": 1, "select": 2, "update": 2},
            "relationships": {"auto": 2, "manual": 0}, "event_triggers": 0, "remote_schemas": 0,
        },
    },
}  # fmt: skip
V1_3: JSONObject = {
    "topic": "server_test",
    "data": {
        "db_uid": SERVER_BODY_UUID, "instance_uid": SERVER_BODY_UUID, "version": "v1.3.3", "ci": None,
        "metrics": {
            "tables": 5, "views": 0, "enum_tables": 1, "relationships": {"manual": 0, "auto": 4},
            "permissions": {"select": 3, "insert": 1, "update": 1, "delete": 0, "roles": 2}, "event_triggers": 1,
            "remote_schemas": 1, "functions": 0,
            "service_timings": {"dimensions": [], "timings": []}, "pg_version": 120004,
            "actions": {"synchronous": 1, "asynchronous": 0, "query_actions": 2, "type_relationships": 0,
                        "custom_types": 3},
        },
    },
}  # fmt: skip
V2_0: JSONObject = {
    "topic": "server_metrics_v2",
    "data": {
        "metadata_db_uid": SERVER_BODY_UUID, "instance_uid": SERVER_BODY_UUID,
        "hasura_version": "v2.0.0-beta.1", "ci": None,
        "source_metadata": {"db_uid": None, "db_kind": "mssql", "db_version": None},
        "metrics": {
            "tables": 7, "views": 1, "enum_tables": 0, "relationships": {"manual": 1, "auto": 0},
            "permissions": {"select": 0, "insert": 0, "update": 0, "delete": 0, "roles": 0}, "event_triggers": 0,
            "functions": 0, "remote_schemas": None, "service_timings": None, "actions": None,
        },
        "experimental_features": [],
    },
}  # fmt: skip
V2_NEWEST: JSONObject = {
    "topic": "server_metrics_v2",
    "data": {
        "metadata_db_uid": SERVER_BODY_UUID, "instance_uid": SERVER_BODY_UUID,
        "hasura_version": "v2.36.0-ce", "ci": "GITHUB_ACTIONS",
        "source_metadata": {"db_uid": SERVER_BODY_UUID, "backend_type": "postgres", "db_kind": "postgres",
                            "db_version": "150004"},
        "metrics": {
            "tables": 12, "views": 2, "enum_tables": 1, "relationships": {"manual": 3, "auto": 9},
            "permissions": {"select": 4, "insert": 2, "update": 2, "delete": 1, "roles": 3}, "event_triggers": 1,
            "functions": 2, "remote_schemas": 1, "service_timings": {"dimensions": [], "timings": []},
            "actions": {"synchronous": 1, "asynchronous": 1, "query_actions": 0, "type_relationships": 0,
                        "custom_types": 4},
            "native_queries": {"with_parameters": 1, "without_parameters": 2},
            "stored_procedures": {"with_parameters": 0, "without_parameters": 0},
            "logical_models": {"count": 3},
        },
        "experimental_features": ["streaming_subscriptions"],
    },
}  # fmt: skip

CLI_BODY_UUID = "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
# What the CLI's `error` really carried (a Go error serialized as it is): SQL with a row value, the
# server URL with its query and address, and a local path with a home directory and a migration name.
ERROR: JSONObject = {
    "Op": "commands.Execute",
    "Err": {
        "statement": "alter table accounting.invoice_lines add column customer_email text default 'alice@example.com'",
        "url": "https://hasura.internal.example:8080/v2/query?secret=CANARY_QUERY",
        "path": "/home/alice/acme-billing/migrations/default/1700000000_add_customer_email/up.sql",
    },
}

# As cli/telemetry/telemetry.go sent them: the first releases nested the fields under "data"; later
# ones flat beside the topic, `command` first the path alone, then the path and `--name` of each flag set.
NESTED: JSONObject = {
    "topic": "cli_test",
    "data": {
        "uuid": CLI_BODY_UUID, "server_uuid": CLI_BODY_UUID, "execution_id": CLI_BODY_UUID, "os_platform": "darwin",
        "os_arch": "amd64", "version": "dev", "server_version": "v1.0.0-beta.2", "command": "hasura migrate apply",
        "is_error": False, "payload": None,
    },
}  # fmt: skip
FLAT_PATH: JSONObject = {
    "topic": "cli", "uuid": CLI_BODY_UUID, "server_uuid": CLI_BODY_UUID, "execution_id": CLI_BODY_UUID,
    "os_platform": "windows", "os_arch": "386", "version": "v1.3.3", "server_version": "v1.3.3",
    "command": "hasura console", "is_error": False, "payload": None,
}  # fmt: skip
FLAT_FLAGS: JSONObject = {
    "topic": "cli", "uuid": CLI_BODY_UUID, "server_uuid": CLI_BODY_UUID, "execution_id": CLI_BODY_UUID,
    "os_platform": "linux", "os_arch": "arm64", "version": "v2.36.0", "server_version": "v2.36.0-ce",
    "command": "hasura migrate apply --admin-secret --database-name --endpoint", "is_error": True, "error": ERROR,
    "payload": None,
}  # fmt: skip

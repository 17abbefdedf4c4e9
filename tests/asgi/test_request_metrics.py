"""Requests counted by a fixed path class and status, never by path; WebSockets as accepted (101) or refused."""

from __future__ import annotations

import pytest

from console_proxy.asgi.request_metrics import path_class


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/_telemetry/v1/events", "events"),
        ("/_telemetry/v1/ws", "ws"),
        ("/_telemetry/v1/server", "server"),
        ("/_telemetry/v1/cli", "cli"),
        ("/_telemetry/v1/status", "status"),
        ("/_telemetry/v1/recent", "recent"),
        ("/metrics", "metrics"),
        ("/readyz", "readyz"),
        ("/healthz", "healthz"),
        ("/", "console"),
        ("/console", "console"),
        ("/console/data/secret_db/schema/public", "console"),
        ("/consoles", "other"),
        ("/_telemetry/v1/eventsX", "other"),
        ("/wp-admin/secret", "other"),
    ],
)
def test_each_path_has_a_fixed_class(path: str, expected: str) -> None:
    assert path_class(path, "/console") == expected

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from console_proxy.events import (
    ConsoleEvent,
    encode_envelope,
    encode_event,
    format_timestamp,
    new_id,
    valid_uuid,
    valid_version,
)

EVENT: ConsoleEvent = {
    "event_id": "11111111-2222-4333-8444-555555555555",
    "event_type": "Data/SET_TABLE",
    "url": "/data/SOURCE/schema/SCHEMA/tables/TABLE/browse",
    "console_mode": "server",
    "server_uuid": None,
    "cli_uuid": None,
    "server_version": "v2.40.0",
    "timestamp": "2026-11-27T19:00:00.123Z",
    "data": None,
}


@pytest.mark.parametrize(
    ("now", "text"),
    [
        (datetime(2026, 11, 27, 19, 0, 0, 123456, tzinfo=UTC), "2026-11-27T19:00:00.123Z"),
        (datetime(2026, 1, 2, 3, 4, 5), "2026-01-02T03:04:05.000Z"),
        (datetime(2026, 1, 2, 3, 4, 5, 999999, tzinfo=timezone(timedelta(hours=2))), "2026-01-02T01:04:05.999Z"),
    ],
)
def test_timestamp_format(now: datetime, text: str) -> None:
    assert format_timestamp(now) == text


def test_the_envelope_is_the_wire_format_byte_for_byte() -> None:
    body = encode_envelope("console", "b-1", [encode_event(EVENT), encode_event({**EVENT, "url": "/é"})])
    expected = json.dumps(
        {"topic": "console", "batch_id": "b-1", "data": [EVENT, {**EVENT, "url": "/é"}]},
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    assert body == expected


@pytest.mark.parametrize("topic", ["console", "console_test", "server_metrics_v2", "cli"])
def test_the_envelope_carries_its_own_topic(topic: str) -> None:
    assert json.loads(encode_envelope(topic, "b-1", [])) == {"topic": topic, "batch_id": "b-1", "data": []}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("11111111-2222-4333-8444-55555555AAAA", "11111111-2222-4333-8444-55555555aaaa"),
        ("11111111-2222-4333-8444-555555555555\n", None),
        ("{11111111-2222-4333-8444-555555555555}", None),
        (42, None),
    ],
)
def test_valid_uuid(value: object, expected: str | None) -> None:
    assert valid_uuid(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("v2.40.0", "v2.40.0"), ("2.40.0-beta.1", "2.40.0-beta.1"), ("v2.40.0\n", None), ("v٢.40.0", None), (None, None)],
)
def test_valid_version(value: object, expected: str | None) -> None:
    assert valid_version(value) == expected


def test_new_ids_are_distinct_uuid4() -> None:
    ids = {new_id() for _ in range(100)}
    assert len(ids) == 100 and all(valid_uuid(i) == i and i[14] == "4" for i in ids)

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from console_proxy.core.events import (
    ConsoleEvent,
    encode_batch,
    encode_envelope,
    encode_event,
    encode_events,
    format_timestamp,
    new_id,
    new_ids,
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
    other: ConsoleEvent = {**EVENT, "url": "/é"}
    body = encode_envelope("console", "b-1", [encode_event(EVENT), encode_event(other)])
    expected = json.dumps(
        {"topic": "console", "batch_id": "b-1", "data": [EVENT, other]},
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    assert body == expected


def test_a_batch_in_one_step_is_the_envelope_of_its_encoded_events() -> None:
    events: list[ConsoleEvent] = [EVENT, {**EVENT, "url": '/é\u2028\x7f\x1f"\\'}]
    assert encode_batch("console", "b-1", events) == encode_envelope("console", "b-1", map(encode_event, events))
    assert encode_events(events) == [(encode_event(e), len(encode_event(e).encode())) for e in events]


def test_a_lone_surrogate_fails_as_the_standard_library_fails() -> None:
    event: ConsoleEvent = {**EVENT, "url": "/\ud800"}
    assert encode_event(event) == json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    with pytest.raises(UnicodeEncodeError):
        encode_batch("console", "b-1", [event])
    with pytest.raises(UnicodeEncodeError):
        encode_events([event])


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


@pytest.mark.parametrize("n", [0, 1, 20, 1000])
def test_ids_in_bulk_are_what_uuid4_makes(n: int) -> None:
    ids = new_ids(n)
    assert len(set(ids)) == n
    for text in ids:
        parsed = uuid.UUID(text)
        assert (str(parsed), parsed.version, parsed.variant) == (text, 4, uuid.RFC_4122)
    # Every variant digit occurs: the variant's bits are set over random ones, not a constant.
    assert n < 1000 or {text[19] for text in ids} == set("89ab")

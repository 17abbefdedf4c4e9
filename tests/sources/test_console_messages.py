"""Every era's console message through the console source with the shipped rules: what is kept, exactly."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from console_proxy.core.events import Identity
from console_proxy.core.settings import Settings
from console_proxy.rules.route_rules import load_rules
from console_proxy.sources.base import Built, Context
from console_proxy.sources.console import build

from support.console_messages import CANARY, CANARY_UUID, ERAS, explicit, redux, text

SERVER_UUID = "11111111-2222-4333-8444-555555555555"
NOW = datetime(2026, 12, 1, 4, 0, 0, tzinfo=UTC)
RULES = load_rules()


def built(message: dict[str, Any], **settings: Any) -> Built:
    context = Context(Settings(**settings), RULES, Identity(server_uuid=SERVER_UUID, server_version="v2.40.0"), now=NOW)
    return build(text(message).encode(), context)


@pytest.mark.parametrize(("message", "kept", "reason"), ERAS, ids=[m[0]["data"]["event_type"] for m in ERAS])
def test_each_era_topic_and_kind(message: dict[str, Any], kept: tuple[str, ...] | None, reason: str | None) -> None:
    result = built(message)
    if kept is None:
        assert (result.batches, result.dropped) == ({}, Counter({reason: 1}))
        return
    topic, event_type, url, console_type = kept
    [(got_topic, [event])] = result.batches.items()
    expected: dict[str, Any] = {
        "event_id": event["event_id"],
        "event_type": event_type,
        "url": url,
        "console_mode": "server",
        "server_uuid": SERVER_UUID,
        "cli_uuid": None,
        "server_version": "v2.40.0",
        "timestamp": "2026-12-01T04:00:00.000Z",
        "data": None,
    }
    if console_type is not None:
        expected["console_type"] = console_type
    assert (got_topic, dict(event), result.dropped) == (topic, expected, Counter())
    sent = json.dumps(event)
    assert CANARY not in sent and CANARY_UUID not in sent


def test_the_counts_over_every_era() -> None:
    kept: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    for message, _, _ in ERAS:
        result = built(message)
        for topic, events in result.batches.items():
            kept[topic] += len(events)
        dropped.update(result.dropped)
    assert kept == Counter({"console": 12, "console_test": 2})
    assert dropped == Counter({"action_dropped": 1})


@pytest.mark.parametrize(
    "message",
    [
        redux("console_test", "Data/SET_TABLE", "/data/db/sql"),
        explicit("console-test-v2", "CLICK_EVENT", "/data/manage", {"id": CANARY}),
    ],
)
def test_development_builds_are_kept_apart_or_dropped_when_the_operator_says_so(message: dict[str, Any]) -> None:
    kept = built(message)
    assert list(kept.batches) == ["console_test"] and kept.dropped == Counter()
    dropped = built(message, drop_test_events=True)
    assert (dropped.batches, dropped.dropped) == ({}, Counter({"test_build": 1}))
    # Production messages are not touched by the flag.
    production = dict(message, topic="console")
    assert list(built(production, drop_test_events=True).batches) == ["console"]


@pytest.mark.parametrize("console_type", ["oss", "cloud", "pro", "pro-lite"])
def test_console_type_is_kept_from_its_enumeration(console_type: str) -> None:
    [events] = built(
        explicit("console-v2", "CLICK_EVENT", "/", {"id": "x"}, console_type=console_type)
    ).batches.values()
    assert events[0]["console_type"] == console_type  # type: ignore[typeddict-item]


@pytest.mark.parametrize("console_type", ["OSS", "enterprise", "", None, 7, ["oss"], {"oss": 1}, CANARY])
def test_any_other_console_type_is_left_out(console_type: object) -> None:
    [events] = built(
        explicit("console-v2", "CLICK_EVENT", "/", {"id": "x"}, console_type=console_type)
    ).batches.values()
    assert "console_type" not in events[0]


@pytest.mark.parametrize("topic", ["Console", "console-v3", "console_test_v2", "server", "", None, ["console"]])
def test_other_topics_are_refused(topic: object) -> None:
    with pytest.raises(Exception) as refused:
        built(redux("console", "Data/SET_TABLE", "/") | {"topic": topic})
    assert getattr(refused.value, "status", None) == 400

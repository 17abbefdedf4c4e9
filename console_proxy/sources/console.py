"""The console's batches: parsing, limits and the fields kept (POST /_telemetry/v1/events and the WebSocket).

Pure, no I/O.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from console_proxy.errors import BatchError
from console_proxy.events import (
    ACTION_SHAPE,
    CONSOLE_TOPIC,
    MAX_VERSION_LENGTH,
    ConsoleEvent,
    Identity,
    OutboundEvent,
    format_timestamp,
    new_id,
)
from console_proxy.sources.base import (
    MAX_BODY_BYTES,
    Built,
    Context,
    Rules,
    Source,
    body_too_large,
    check_media_type,
    strict_json,
)

MAX_EVENTS = 100
MAX_ROUTE_LENGTH = 2048
# What a browser may claim: a free pre-release label would carry up to 32 characters of its choosing (a
# database name), so only Hasura's own labels, with an optional number, pass.
BROWSER_VERSION_PATTERN = re.compile(
    r"v?[0-9]{1,4}\.[0-9]{1,4}\.[0-9]{1,4}(-(alpha|beta|rc|ce|ee|pro|cloud|dev)(\.[0-9]{1,4})?)?"
)

# What navigator.sendBeacon sends is text/plain.
ACCEPTED_MEDIA_TYPES = frozenset({"application/json", "text/plain"})
HASURA_TOPICS = frozenset({"console", "console_test"})

# Control characters and lone surrogates: a browser's pathname never holds them raw, and a lone
# surrogate cannot even be encoded when written out.
_BAD_ROUTE_CHARS = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


def _bad_shape() -> BatchError:
    return BatchError(400, "invalid batch shape", "bad_shape")


@dataclasses.dataclass(frozen=True)
class InboundEvent:
    """One event as kept from the browser: the action name and the raw route, nothing else."""

    type: str
    route: str


@dataclasses.dataclass
class ParsedBatch:
    """The events kept from one inbound batch, a validated `server_version` and the drops by reason."""

    events: list[InboundEvent]
    server_version: str | None
    dropped: Counter[str] = dataclasses.field(default_factory=Counter)


def check_content_type(content_type: str | None) -> None:
    """Accept `application/json` and `text/plain` (what `sendBeacon` sends), any parameters; else 415."""
    check_media_type(content_type, ACCEPTED_MEDIA_TYPES)


def _browser_version(value: object) -> str | None:
    if isinstance(value, str) and len(value) <= MAX_VERSION_LENGTH and BROWSER_VERSION_PATTERN.fullmatch(value):
        return value
    return None


def parse_batch(body: bytes) -> ParsedBatch:
    """Parse a batch (`{"events": [...]}`, a bare array, or one `{"topic": "console", "data": {...}}` message).

    Raises BatchError for a batch refused as a whole; single bad events are dropped and counted.
    """
    if len(body) > MAX_BODY_BYTES:
        raise body_too_large()
    if not body:
        raise BatchError(400, "empty body", "empty_body")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BatchError(400, "invalid UTF-8", "invalid_utf8") from None
    try:
        document = strict_json(text)
    except RecursionError:
        raise BatchError(400, "nesting too deep", "too_deep") from None
    except ValueError:
        # JSONDecodeError, and the ValueError of an integer longer than Python's digit limit.
        raise BatchError(400, "invalid JSON", "invalid_json") from None

    server_version: str | None = None
    raw_events: list[Any]
    if isinstance(document, list):
        raw_events = document
    elif isinstance(document, dict) and "events" in document:
        raw_events = document["events"]
        if not isinstance(raw_events, list):
            raise _bad_shape()
        server_version = _browser_version(document.get("server_version"))
    elif isinstance(document, dict) and _is_hasura_topic(document.get("topic")):
        # One Hasura-console message: its event_type and url are read below as type and route.
        data = document.get("data")
        if not isinstance(data, dict):
            raise _bad_shape()
        raw_events = [data]
        server_version = _browser_version(data.get("server_version"))
    else:
        raise _bad_shape()
    if len(raw_events) > MAX_EVENTS:
        raise BatchError(413, "too many events", "too_many_events")

    batch = ParsedBatch(events=[], server_version=server_version)
    for raw in raw_events:
        event = _parse_event(raw, batch.dropped)
        if event is not None:
            batch.events.append(event)
    return batch


def _is_hasura_topic(topic: object) -> bool:
    # A set lookup would raise TypeError on a list or an object.
    return isinstance(topic, str) and topic in HASURA_TOPICS


def _parse_event(raw: object, dropped: Counter[str]) -> InboundEvent | None:
    if not isinstance(raw, dict):
        dropped["not_an_object"] += 1
        return None
    # Only these keys are looked at; payload, meta, error and client UUIDs are never read.
    action = raw["type"] if "type" in raw else raw.get("event_type")
    route = raw["route"] if "route" in raw else raw.get("url")
    if not isinstance(action, str) or not ACTION_SHAPE.fullmatch(action):
        dropped["bad_type"] += 1
        return None
    if not isinstance(route, str) or not route:
        dropped["bad_route"] += 1
        return None
    if len(route) > MAX_ROUTE_LENGTH:
        dropped["route_too_long"] += 1
        return None
    if _BAD_ROUTE_CHARS.search(route):
        dropped["bad_route"] += 1
        return None
    return InboundEvent(type=action, route=route)


def build_outbound(
    batch: ParsedBatch,
    rules: Rules,
    identity: Identity,
    *,
    mode: str,
    now: datetime,
    new_id: Callable[[], str] = new_id,
) -> tuple[list[ConsoleEvent], Counter[str]]:
    """Run the kept events through the rules and build the outbound events of DESIGN.md.

    Returns the events and ALL drops of the batch by reason (the parse drops of `batch.dropped`
    plus `action_dropped` for actions the rules drop), so `dropped` in the 202 is their sum.
    """
    dropped: Counter[str] = Counter(batch.dropped)
    server_version = identity.server_version or batch.server_version
    timestamp = format_timestamp(now)
    outbound: list[ConsoleEvent] = []
    for event in batch.events:
        action = rules.action(event.type)
        if action is None:
            dropped["action_dropped"] += 1
            continue
        # The name was checked when parsed; only a name the rules changed needs checking again.
        if action is not event.type and not ACTION_SHAPE.fullmatch(action):
            dropped["bad_type"] += 1
            continue
        outbound.append(
            {
                "event_id": new_id(),
                "event_type": action,
                "url": rules.anonymize(event.route),
                "console_mode": mode,
                "server_uuid": identity.server_uuid,
                "cli_uuid": identity.cli_uuid,
                "server_version": server_version,
                "timestamp": timestamp,
                "data": None,
            }
        )
    return outbound, dropped


def build(body: bytes, context: Context) -> Built:
    """The console source's parser: one body (HTTP or a WebSocket message) into a `console` batch."""
    events, dropped = build_outbound(
        parse_batch(body),
        context.rules,
        context.identity,
        mode=context.settings.mode,
        now=context.now,
        new_id=context.new_id,
    )
    batches: dict[str, list[OutboundEvent]] = {CONSOLE_TOPIC: list(events)} if events else {}
    return Built(batches=batches, dropped=dropped)


SOURCE = Source(name="console", build=build, media_types=ACCEPTED_MEDIA_TYPES, max_body_bytes=MAX_BODY_BYTES)

"""The console's batches: parsing, limits and the fields kept (POST /_telemetry/v1/events and the WebSocket).

Pure, no I/O.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple

from console_proxy.core.errors import BatchError
from console_proxy.core.events import (
    CONSOLE_TEST_TOPIC,
    CONSOLE_TOPIC,
    MAX_VERSION_LENGTH,
    ConsoleEvent,
    Identity,
    OutboundEvent,
    format_timestamp,
    new_ids,
)
from console_proxy.sources.base import (
    MAX_BODY_BYTES,
    Built,
    Context,
    Rules,
    Source,
    Unknowns,
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
# The Hasura console's topics (docs/consoles.md): v1.x/v2.x Redux events, and the newest console's explicit ones.
PRODUCTION_TOPICS = frozenset({"console", "console-v2"})
# Development builds (window.__env.nodeEnv == "development"): never merged into production data.
TEST_TOPICS = frozenset({"console_test", "console-test-v2"})
HASURA_TOPICS = PRODUCTION_TOPICS | TEST_TOPICS
# The newest console's console_type, as its parseConsoleType admits them.
CONSOLE_TYPES = frozenset({"oss", "cloud", "pro", "pro-lite"})
# A development build's events, when the operator drops them (--drop-test-events true).
TEST_BUILD_DROPPED = "test_build"

# Control characters and lone surrogates: a browser's pathname never holds them raw, and a lone
# surrogate cannot even be encoded when written out.
# A raw string: the expression's own escapes, as mypyc compiles no surrogate in a string literal.
_BAD_ROUTE_CHARS = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def _bad_shape() -> BatchError:
    return BatchError(400, "invalid batch shape", "bad_shape")


class InboundEvent(NamedTuple):
    """One event as kept from the browser: the action name, the raw route and a known console type, nothing else.

    A named tuple rather than a frozen dataclass: it is built for every event, and a tuple is built several times
    faster."""

    type: str
    route: str
    console_type: str | None = None


@dataclasses.dataclass
class ParsedBatch:
    """The events kept from one inbound batch, a validated `server_version` and the drops by reason.

    `test` is set for a message from a development build of the console (topic console_test or console-test-v2).
    """

    events: list[InboundEvent]
    server_version: str | None
    dropped: Counter[str] = dataclasses.field(default_factory=Counter)
    test: bool = False


# InboundEvent(type, route, console_type) without the named tuple's Python-level __new__.
_inbound: Callable[[tuple[str, str, str | None]], InboundEvent] = functools.partial(tuple.__new__, InboundEvent)
_bad_route_char = _BAD_ROUTE_CHARS.search


def _no_match(route: str) -> None:
    return None


def check_content_type(content_type: str | None) -> None:
    """Accept `application/json` and `text/plain` (what `sendBeacon` sends), any parameters; else 415."""
    check_media_type(content_type, ACCEPTED_MEDIA_TYPES)


def _browser_version(value: object) -> str | None:
    if isinstance(value, str) and len(value) <= MAX_VERSION_LENGTH and BROWSER_VERSION_PATTERN.fullmatch(value):
        return value
    return None


def parse_batch(body: bytes) -> ParsedBatch:
    """Parse a batch (`{"events": [...]}`, a bare array, or one Hasura console message `{"topic", "data"}` of any
    era: topics console, console-v2, console_test and console-test-v2).

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
    test = False
    raw_events: list[Any]
    if isinstance(document, list):
        raw_events = document
    elif isinstance(document, dict) and "events" in document:
        # Checked before it is taken as a list: compiled (mypyc), the assignment itself would check it.
        events = document["events"]
        if not isinstance(events, list):
            raise _bad_shape()
        raw_events = events
        server_version = _browser_version(document.get("server_version"))
    elif isinstance(document, dict) and _is_hasura_topic(document.get("topic")):
        # One Hasura-console message: its event_type and url are read below as type and route.
        data = document.get("data")
        if not isinstance(data, dict):
            raise _bad_shape()
        raw_events = [data]
        server_version = _browser_version(data.get("server_version"))
        test = document["topic"] in TEST_TOPICS
    else:
        raise _bad_shape()
    if len(raw_events) > MAX_EVENTS:
        raise BatchError(413, "too many events", "too_many_events")

    batch = ParsedBatch(events=[], server_version=server_version, test=test)
    dropped, keep = batch.dropped, batch.events.append
    # A JSON text refuses raw control characters in its strings, and a lone surrogate can only be written as an
    # escape: without a backslash or a DEL in the text, no route holds a character _BAD_ROUTE_CHARS looks for.
    bad_route_char = _bad_route_char if "\\" in text or "\x7f" in text else _no_match
    # Inline rather than a call per event: this loop runs for every event of every batch.
    for raw in raw_events:
        if not isinstance(raw, dict):
            dropped["not_an_object"] += 1
            continue
        # Only these keys are looked at; payload, meta, data, event_data (element ids, error messages, stacks,
        # hashes of table names) and the client's UUIDs are never read.
        action = raw["type"] if "type" in raw else raw.get("event_type")
        route = raw["route"] if "route" in raw else raw.get("url")
        # Any string: the rules decide what leaves of it (the name, the unknown token, or nothing).
        if not isinstance(action, str):
            dropped["bad_type"] += 1
            continue
        # "" is the index page: the console's own clean-up strips its URL prefix (the rules match it as /).
        if not isinstance(route, str):
            dropped["bad_route"] += 1
            continue
        if len(route) > MAX_ROUTE_LENGTH:
            dropped["route_too_long"] += 1
            continue
        if bad_route_char(route):
            dropped["bad_route"] += 1
            continue
        console_type = raw.get("console_type")
        # A membership test only on a string: a list or an object would raise TypeError in a set lookup.
        keep(
            _inbound(
                (
                    action,
                    route,
                    console_type if isinstance(console_type, str) and console_type in CONSOLE_TYPES else None,
                )
            )
        )
    return batch


def _is_hasura_topic(topic: object) -> bool:
    # A set lookup would raise TypeError on a list or an object.
    return isinstance(topic, str) and topic in HASURA_TOPICS


def build_outbound(
    batch: ParsedBatch,
    rules: Rules,
    identity: Identity,
    *,
    mode: str,
    now: datetime,
    new_id: Callable[[], str] | None = None,
    new_ids: Callable[[int], list[str]] = new_ids,
    unknowns: Unknowns | None = None,
) -> tuple[list[ConsoleEvent], Counter[str]]:
    """Run the kept events through the rules and build the outbound events (docs/design.md, "What is forwarded").

    Returns the events and ALL drops of the batch by reason (the parse drops of `batch.dropped` plus
    `action_dropped` for each name on the rules' `drop` list), so `dropped` in the 202 is their sum.
    A name on no `allow` entry leaves as the rules' unknown token; `unknowns`, when given, counts those events
    and, when it collects them, keeps the raw names and the raw routes that became the unknown route.
    Event ids come from `new_id`, one call per event, when given; else from one `new_ids` call for the batch.
    """
    dropped: Counter[str] = Counter(batch.dropped)
    # Read once for the batch: the same for every event.
    server_version = identity.server_version or batch.server_version
    server_uuid, cli_uuid = identity.server_uuid, identity.cli_uuid
    timestamp = format_timestamp(now)
    next_id = new_id if new_id is not None else iter(new_ids(len(batch.events))).__next__
    classify, anonymize = rules.classify_action, rules.anonymize
    raw_actions = unknowns.raw_actions if unknowns is not None else None
    raw_routes = unknowns.raw_routes if unknowns is not None else None
    unknown_route = rules.unknown
    outbound: list[ConsoleEvent] = []
    # What the rules decided for each action name of this batch (a console repeats a few names): the rules are
    # pure, so one decision per name and batch is the same as one per event.
    decided: dict[str, tuple[str, str | None]] = {}
    unknown_count = 0
    for event in batch.events:
        decision = decided.get(event.type)
        if decision is None:
            decision = decided[event.type] = classify(event.type)
        outcome, action = decision
        if action is None:
            dropped["action_dropped"] += 1
            continue
        if outcome == "unknown":
            unknown_count += 1
            if raw_actions is not None:
                raw_actions.add(event.type)
        url = anonymize(event.route)
        if raw_routes is not None and url == unknown_route:
            raw_routes.add(event.route)
        built: ConsoleEvent = {
            "event_id": next_id(),
            "event_type": action,
            "url": url,
            "console_mode": mode,
            "server_uuid": server_uuid,
            "cli_uuid": cli_uuid,
            "server_version": server_version,
            "timestamp": timestamp,
            "data": None,
        }
        if event.console_type is not None:
            built["console_type"] = event.console_type
        outbound.append(built)
    if unknowns is not None:
        unknowns.actions += unknown_count
    return outbound, dropped


def build(body: bytes, context: Context) -> Built:
    """The console source's parser: one body (HTTP or a WebSocket message) into a `console` batch, or a
    `console_test` batch for a development build's message (dropped and counted with --drop-test-events)."""
    parsed = parse_batch(body)
    unknowns = Unknowns.collecting() if context.learn else Unknowns()
    events, dropped = build_outbound(
        parsed,
        context.rules,
        context.identity,
        mode=context.settings.mode,
        now=context.now,
        new_ids=context.new_ids,
        unknowns=unknowns,
    )
    batches: dict[str, list[OutboundEvent]] = {}
    if events and parsed.test and context.settings.drop_test_events:
        dropped[TEST_BUILD_DROPPED] += len(events)
    elif events:
        batches[CONSOLE_TEST_TOPIC if parsed.test else CONSOLE_TOPIC] = list(events)
    return Built(batches=batches, dropped=dropped, unknowns=unknowns)


SOURCE = Source(name="console", build=build, media_types=ACCEPTED_MEDIA_TYPES, max_body_bytes=MAX_BODY_BYTES)

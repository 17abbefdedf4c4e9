from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console_proxy.core.errors import BatchError, ConsoleProxyError
from console_proxy.core.events import Identity
from console_proxy.rules.route_rules import RouteRules, load_rules
from console_proxy.rules.sources import CliRules, ServerSchema
from console_proxy.sources.base import MAX_BODY_BYTES, Unknowns
from console_proxy.sources.console import (
    MAX_EVENTS,
    MAX_ROUTE_LENGTH,
    InboundEvent,
    ParsedBatch,
    build_outbound,
    check_content_type,
    parse_batch,
)

CANARY = "CANARY-7f3a"
CLIENT_UUID = "99999999-8888-4777-8666-555555555555"
SERVER_UUID = "11111111-2222-4333-8444-555555555555"
CLI_UUID = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
NOW = datetime(2026, 11, 27, 19, 0, 0, 123456, tzinfo=UTC)
OUTBOUND_FIELDS = {
    "event_id",
    "event_type",
    "url",
    "console_mode",
    "server_uuid",
    "cli_uuid",
    "server_version",
    "timestamp",
    "data",
}


class FakeRules:
    """Stands in for console_proxy.rules.RouteRules: drops one action, sends UNKNOWN for names starting with
    x, anonymizes every route to a fixed token."""

    unknown = "/UNKNOWN"

    def classify_action(self, name: object) -> tuple[str, str | None]:
        if name == "App/ONGOING_REQUEST":
            return "dropped", None
        if isinstance(name, str) and name.startswith("x"):
            return "unknown", "UNKNOWN"
        return "kept", str(name)

    def anonymize(self, url: str) -> str:
        return "/data/SOURCE" if url.startswith("/console/data/") else "/UNKNOWN"

    # The console source reads neither; empty sections, as a rules file without them has.
    server = ServerSchema()
    cli = CliRules()


def _ids() -> Callable[[], str]:
    counter = iter(range(1000))
    return lambda: f"id-{next(counter)}"


def body(document: object) -> bytes:
    return json.dumps(document).encode()


# --- content type ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "text/plain", "text/plain;charset=UTF-8", "Application/JSON; charset=utf-8", " text/plain "],
)
def test_content_type_accepted(content_type: str) -> None:
    check_content_type(content_type)


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "application/xml",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/html",
        "application/jsonx",
        "json",
    ],
)
def test_content_type_refused(content_type: str | None) -> None:
    with pytest.raises(BatchError) as caught:
        check_content_type(content_type)
    assert (caught.value.status, caught.value.body, caught.value.reason) == (
        415,
        b'{"error":"unsupported media type"}',
        "unsupported_media_type",
    )


# --- whole-batch errors ----------------------------------------------------------------------


def _deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


@pytest.mark.parametrize(
    ("raw", "status", "error", "reason"),
    [
        (b"", 400, "empty body", "empty_body"),
        (b"{", 400, "invalid JSON", "invalid_json"),
        (b"   ", 400, "invalid JSON", "invalid_json"),
        (b"{'events': []}", 400, "invalid JSON", "invalid_json"),
        (b'{"events": [] } trailing', 400, "invalid JSON", "invalid_json"),
        (b"[" + b"1" * 5000 + b"]", 400, "invalid JSON", "invalid_json"),
        (b'{"events": ["\xff\xfe"]}', 400, "invalid UTF-8", "invalid_utf8"),
        (b"\xc3\x28", 400, "invalid UTF-8", "invalid_utf8"),
        (b'"just a string"', 400, "invalid batch shape", "bad_shape"),
        (b"42", 400, "invalid batch shape", "bad_shape"),
        (b"null", 400, "invalid batch shape", "bad_shape"),
        (b"{}", 400, "invalid batch shape", "bad_shape"),
        (b'{"events": {"type": "A"}}', 400, "invalid batch shape", "bad_shape"),
        (b'{"events": "A"}', 400, "invalid batch shape", "bad_shape"),
        (b'{"events": null}', 400, "invalid batch shape", "bad_shape"),
        (b'{"topic": "other", "data": {"event_type": "A", "url": "/"}}', 400, "invalid batch shape", "bad_shape"),
        (b'{"topic": "console", "data": []}', 400, "invalid batch shape", "bad_shape"),
        (b'{"topic": "console", "data": null}', 400, "invalid batch shape", "bad_shape"),
        (b'{"topic": "console"}', 400, "invalid batch shape", "bad_shape"),
        (b'{"topic": [], "data": {"event_type": "A", "url": "/"}}', 400, "invalid batch shape", "bad_shape"),
        (b'{"topic": {"a": 1}}', 400, "invalid batch shape", "bad_shape"),
        (_deep(30000), 400, "nesting too deep", "too_deep"),
        (b'{"events": ' + _deep(30000) + b"}", 400, "nesting too deep", "too_deep"),
        (b" " * (MAX_BODY_BYTES + 1), 413, "body too large", "body_too_large"),
        (body([{"type": "A", "route": "/"}] * (MAX_EVENTS + 1)), 413, "too many events", "too_many_events"),
        (body({"events": [{}] * (MAX_EVENTS + 1)}), 413, "too many events", "too_many_events"),
    ],
)
def test_batch_refused(raw: bytes, status: int, error: str, reason: str) -> None:
    with pytest.raises(BatchError) as caught:
        parse_batch(raw)
    assert caught.value.status == status
    assert caught.value.body == json.dumps({"error": error}, separators=(",", ":")).encode()
    assert caught.value.reason == reason
    assert isinstance(caught.value, ConsoleProxyError)


def test_error_body_never_echoes_input() -> None:
    for raw in [b'{"events": "' + CANARY.encode() + b'"', CANARY.encode(), b'["' + CANARY.encode() + b'\xff"]']:
        with pytest.raises(BatchError) as caught:
            parse_batch(raw)
        assert CANARY.encode() not in caught.value.body
        assert CANARY not in str(caught.value)


def test_limits_are_inclusive() -> None:
    events = [{"type": "A/B", "route": "/console"}] * MAX_EVENTS
    assert len(parse_batch(body(events)).events) == MAX_EVENTS
    raw = body({"events": [{"type": "A/B", "route": "/console", "pad": ""}]})
    padded = raw.replace(b'"pad": ""', b'"pad": "' + b"x" * (MAX_BODY_BYTES - len(raw)) + b'"')
    assert len(padded) == MAX_BODY_BYTES
    assert parse_batch(padded).events == [InboundEvent("A/B", "/console")]


# --- the three accepted forms ----------------------------------------------------------------


def test_object_form() -> None:
    raw = body(
        {
            "events": [{"type": "Data/SET_TABLE", "route": "/console/data/db/schema/s"}],
            "console_mode": "cli",
            "server_version": "v2.40.0",
        }
    )
    assert parse_batch(raw) == ParsedBatch(
        [InboundEvent("Data/SET_TABLE", "/console/data/db/schema/s")], "v2.40.0", Counter()
    )


def test_bare_array_form() -> None:
    raw = body([{"type": "A/B", "route": "/console"}, {"type": "C", "route": "/console/x"}])
    assert parse_batch(raw) == ParsedBatch(
        [InboundEvent("A/B", "/console"), InboundEvent("C", "/console/x")], None, Counter()
    )


@pytest.mark.parametrize(
    ("topic", "test"), [("console", False), ("console-v2", False), ("console_test", True), ("console-test-v2", True)]
)
def test_hasura_console_message(topic: str, test: bool) -> None:
    raw = body(
        {
            "topic": topic,
            "data": {
                "server_version": "v2.40.0-beta.1",
                "event_type": "@@router/LOCATION_CHANGE",
                "url": "/console/data/db",
                "console_mode": "server",
                "cli_uuid": CLIENT_UUID,
                "server_uuid": CLIENT_UUID,
                "data": {"message": CANARY, "stack": CANARY},
            },
        }
    )
    assert parse_batch(raw) == ParsedBatch(
        [InboundEvent("@@router/LOCATION_CHANGE", "/console/data/db")], "v2.40.0-beta.1", Counter(), test=test
    )


def test_empty_batches() -> None:
    assert parse_batch(b"[]") == ParsedBatch([], None, Counter())
    assert parse_batch(b'{"events": []}') == ParsedBatch([], None, Counter())


def test_type_and_route_win_over_hasura_names() -> None:
    raw = body([{"type": "A", "event_type": "B", "route": "/r", "url": "/u"}])
    assert parse_batch(raw).events == [InboundEvent("A", "/r")]


# --- per-event checks: dropped and counted, never a batch error ------------------------------


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ("A/B", "not_an_object"),
        (None, "not_an_object"),
        (7, "not_an_object"),
        ([{"type": "A", "route": "/"}], "not_an_object"),
        ({}, "bad_type"),
        ({"route": "/console"}, "bad_type"),
        ({"type": None, "route": "/console"}, "bad_type"),
        ({"type": 7, "route": "/console"}, "bad_type"),
        ({"type": True, "route": "/console"}, "bad_type"),
        ({"type": ["A"], "route": "/console"}, "bad_type"),
        ({"type": {"a": "b"}, "route": "/console"}, "bad_type"),
        ({"type": "A"}, "bad_route"),
        ({"type": "A", "route": None}, "bad_route"),
        ({"type": "A", "route": 7}, "bad_route"),
        ({"type": "A", "route": ["/console"]}, "bad_route"),
        ({"type": "A", "route": {"path": "/"}}, "bad_route"),
        ({"type": "A", "route": "/console\n/x"}, "bad_route"),
        ({"type": "A", "route": "/console\x00"}, "bad_route"),
        ({"type": "A", "route": "/console/\udc80"}, "bad_route"),
        ({"type": "A", "route": "/console\x7f"}, "bad_route"),
        ({"type": "A", "route": "/" + "x" * MAX_ROUTE_LENGTH}, "route_too_long"),
        ({"type": "A", "route": "/" + "x" * 60000}, "route_too_long"),
        ({"event_type": "A", "url": 7}, "bad_route"),
        ({"event_type": 7, "url": "/"}, "bad_type"),
    ],
)
def test_bad_event_dropped_and_counted(event: object, reason: str) -> None:
    good = {"type": "A/B", "route": "/console"}
    batch = parse_batch(body({"events": [good, event, good]}))
    assert batch.events == [InboundEvent("A/B", "/console")] * 2
    assert batch.dropped == Counter({reason: 1})


def test_a_raw_delete_in_a_text_without_any_escape_is_still_refused() -> None:
    # DEL is the one character the route check refuses that JSON may hold unescaped.
    raw = b'{"events":[{"type":"A","route":"/console\x7f"},{"type":"A","route":"/console"}]}'
    assert b"\\" not in raw
    batch = parse_batch(raw)
    assert batch.events == [InboundEvent("A", "/console")]
    assert batch.dropped == Counter({"bad_route": 1})


@pytest.mark.parametrize("name", ["", "A" * 129, "x" * 60000, "A\n", "A<script>", "Données", "A\ud800", "bob@corp.com"])
def test_any_string_name_is_kept_for_the_rules_which_send_it_as_the_token(name: str) -> None:
    batch = parse_batch(body({"events": [{"type": name, "route": "/console"}]}))
    assert batch.events == [InboundEvent(name, "/console")]
    events, dropped = build_outbound(batch, load_rules(), Identity(), mode="server", now=NOW)
    assert ([event["event_type"] for event in events], dropped) == (["UNKNOWN"], Counter())


def test_route_at_the_length_limit_is_kept() -> None:
    route = "/" + "x" * (MAX_ROUTE_LENGTH - 1)
    assert parse_batch(body([{"type": "A", "route": route}])).events == [InboundEvent("A", route)]


def test_deep_nesting_inside_unread_fields_is_harmless() -> None:
    nested = b"[" * 500 + b"]" * 500
    raw = b'[{"type": "A", "route": "/console", "payload": ' + nested + b"}, " + nested + b"]"
    batch = parse_batch(raw)
    assert batch.events == [InboundEvent("A", "/console")]
    assert batch.dropped == Counter({"not_an_object": 1})


def test_hasura_message_with_a_bad_event_is_dropped_not_refused() -> None:
    batch = parse_batch(body({"topic": "console", "data": {"event_type": "A", "url": 7}}))
    assert batch == ParsedBatch([], None, Counter({"bad_route": 1}))


@pytest.mark.parametrize(
    ("version", "kept"),
    [
        ("v2.40.0", "v2.40.0"),
        ("2.40.0", "2.40.0"),
        ("v2.40.0-beta.1", "v2.40.0-beta.1"),
        ("v2.40", None),
        ("v2.40.0\n", None),
        ("v2.40.0 ", None),
        ("v2.40.0-" + CANARY + "/x", None),
        ("v2.40.0-" + "a" * 33, None),
        ("v12345.0.0", None),
        ("v\u0662.40.0", None),
        (CANARY, None),
        ("", None),
        (240, None),
        (None, None),
        (["v2.40.0"], None),
    ],
)
def test_client_server_version_only_when_strict(version: object, kept: str | None) -> None:
    assert parse_batch(body({"events": [], "server_version": version})).server_version == kept
    message = {"topic": "console", "data": {"event_type": "A", "url": "/", "server_version": version}}
    assert parse_batch(body(message)).server_version == kept


# --- build_outbound ------------------------------------------------------------------------


def test_build_outbound_event_fields() -> None:
    batch = ParsedBatch([InboundEvent("Data/SET_TABLE", "/console/data/db1/schema/s1")], "v2.39.0", Counter())
    identity = Identity(server_uuid=SERVER_UUID, cli_uuid=CLI_UUID, server_version="v2.40.0")
    events, dropped = build_outbound(batch, FakeRules(), identity, mode="cli", now=NOW, new_id=_ids())
    assert events == [
        {
            "event_id": "id-0",
            "event_type": "Data/SET_TABLE",
            "url": "/data/SOURCE",
            "console_mode": "cli",
            "server_uuid": SERVER_UUID,
            "cli_uuid": CLI_UUID,
            "server_version": "v2.40.0",
            "timestamp": "2026-11-27T19:00:00.123Z",
            "data": None,
        }
    ]
    assert dropped == Counter()


def test_build_outbound_default_event_ids_are_distinct_uuid4() -> None:
    batch = ParsedBatch([InboundEvent("A", "/console")] * 3, None, Counter())
    events, _ = build_outbound(batch, FakeRules(), Identity(), mode="server", now=NOW)
    ids = [event["event_id"] for event in events]
    assert len(set(ids)) == 3
    assert all(len(i) == 36 and i[14] == "4" for i in ids)


@pytest.mark.parametrize(
    ("identity_version", "batch_version", "sent"),
    [("v2.40.0", "v2.39.0", "v2.40.0"), (None, "v2.39.0", "v2.39.0"), (None, None, None)],
)
def test_server_version_from_identity_then_batch(
    identity_version: str | None, batch_version: str | None, sent: str | None
) -> None:
    batch = ParsedBatch([InboundEvent("A", "/console")], batch_version, Counter())
    events, _ = build_outbound(batch, FakeRules(), Identity(server_version=identity_version), mode="server", now=NOW)
    assert events[0]["server_version"] == sent
    assert (events[0]["server_uuid"], events[0]["cli_uuid"]) == (None, None)


def test_build_outbound_counts_rule_drops_with_parse_drops() -> None:
    batch = parse_batch(body([{"type": "App/ONGOING_REQUEST", "route": "/console"}, 7, {"type": "A", "route": "/x"}]))
    events, dropped = build_outbound(batch, FakeRules(), Identity(), mode="server", now=NOW)
    assert [event["event_type"] for event in events] == ["A"]
    assert dropped == Counter({"action_dropped": 1, "not_an_object": 1})
    assert batch.dropped == Counter({"not_an_object": 1})


def test_build_outbound_sends_the_token_for_an_unknown_name_and_counts_it() -> None:
    batch = ParsedBatch([InboundEvent("x@corp.com", "/"), InboundEvent("A", "/nowhere")], None, Counter())
    unknowns = Unknowns.collecting()
    events, dropped = build_outbound(batch, FakeRules(), Identity(), mode="server", now=NOW, unknowns=unknowns)
    assert ([e["event_type"] for e in events], dropped) == (["UNKNOWN", "A"], Counter())
    assert (unknowns.actions, unknowns.raw_actions, unknowns.raw_routes) == (1, {"x@corp.com"}, {"/", "/nowhere"})


def test_nothing_from_the_browser_leaves_but_type_and_rules_output() -> None:
    raw = body(
        {
            "console_mode": CANARY,
            "server_version": CANARY,
            "cli_uuid": CLIENT_UUID,
            "events": [
                {
                    "type": "Data/SET_TABLE",
                    "route": "/console/data/" + CANARY + "?filter=email%3B%24eq%3B" + CANARY,
                    "payload": {"secret": CANARY},
                    "meta": CANARY,
                    "error": CANARY,
                    "cli_uuid": CLIENT_UUID,
                    "server_uuid": CLIENT_UUID,
                    "server_version": "v9.9.9",
                    "timestamp": CANARY,
                    "event_id": CANARY,
                    "data": CANARY,
                    "console_mode": CANARY,
                },
                {"event_type": "B", "url": "/" + CANARY, "server_uuid": CLIENT_UUID, "data": {"stack": CANARY}},
            ],
        }
    )
    events, _ = build_outbound(parse_batch(raw), FakeRules(), Identity(), mode="server", now=NOW)
    out = json.dumps(events)
    assert len(events) == 2
    assert CANARY not in out
    assert CLIENT_UUID not in out
    assert "v9.9.9" not in out
    assert {event["console_mode"] for event in events} == {"server"}


# --- with the real rules, and for every input ------------------------------------------------


def test_with_the_shipped_rules(default_rules: RouteRules) -> None:
    raw = body(
        {
            "events": [
                {
                    "type": "Data/SET_TABLE",
                    "route": "/console/data/" + CANARY + "/schema/public/tables/users/browse"
                    "?filter=email%3B%24eq%3B" + CANARY,
                    "payload": CANARY,
                },
                {"type": "App/ONGOING_REQUEST", "route": "/console/settings/about"},
                {"event_type": "@@router/LOCATION_CHANGE", "url": "/console/no/such/" + CANARY},
            ]
        }
    )
    events, dropped = build_outbound(
        parse_batch(raw), default_rules, Identity(SERVER_UUID, None, None), mode="server", now=NOW, new_id=_ids()
    )
    assert [(event["event_type"], event["url"]) for event in events] == [
        ("Data/SET_TABLE", "/data/SOURCE/schema/SCHEMA/tables/TABLE/browse"),
        ("@@router/LOCATION_CHANGE", "/UNKNOWN"),
    ]
    assert dropped == Counter({"action_dropped": 1})
    assert CANARY not in json.dumps(events)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from(["type", "route", "event_type", "url", "events", "topic", "data", "server_version", "x"])
            | st.text(max_size=8),
            children,
            max_size=6,
        )
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | _json.map(lambda document: json.dumps(document).encode()))
def test_any_input_is_parsed_or_refused_with_a_4xx(raw: bytes) -> None:
    try:
        batch = parse_batch(raw)
    except BatchError as error:
        assert error.status in (400, 413)
        assert json.loads(error.body) == {"error": str(error)}
        return
    assert len(batch.events) + sum(batch.dropped.values()) <= MAX_EVENTS
    events, _ = build_outbound(batch, FakeRules(), Identity(), mode="server", now=NOW)
    assert all(set(event) == OUTBOUND_FIELDS for event in events)
    assert all(event["url"] in ("/data/SOURCE", "/UNKNOWN") for event in events)

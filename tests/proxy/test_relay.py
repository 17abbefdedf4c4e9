"""The HTTP relay to Hasura, across real sockets: the gate (uvicorn) in front of the stand-in (uvicorn)."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator

import httpx
import pytest

from support import standin_console
from support.hasura_standin import CHUNK, StandIn, Start

LITERAL = standin_console.TELEMETRY_LITERAL.encode()
MARKER = b"data-console-proxy"


def test_end_to_end_headers_pass_hop_by_hop_ones_stop_and_forwarded_ones_are_added(relayed: Start) -> None:
    with relayed() as r:
        sent = {
            "x-hasura-admin-secret": "s3cret",
            "x-hasura-role": "editor",
            "authorization": "Bearer token",
            "cookie": "session=1",
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "connection": "x-client-named",
            "x-client-named": "must not pass",
            "keep-alive": "timeout=9",
            "te": "trailers",
            "proxy-authorization": "Basic eDp4",
            "x-forwarded-for": "203.0.113.9",
        }
        answer = httpx.get(r.gate + "/standin/echo", headers=sent)
    seen = dict(answer.json()["headers"])
    for name in ("x-hasura-admin-secret", "x-hasura-role", "authorization", "cookie", "traceparent"):
        assert seen[name] == sent[name]
    for name in ("x-client-named", "keep-alive", "te", "proxy-authorization"):
        assert name not in seen
    assert "connection" not in seen
    assert seen["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-host"] == r.gate.removeprefix("http://")
    assert seen["host"] == r.hasura.removeprefix("http://")
    assert answer.headers.get_list("set-cookie") == ["standin_a=1; Path=/; HttpOnly", "standin_b=2; Path=/console"]
    assert answer.headers["x-standin-end"] == "kept"
    assert answer.headers["location"] == "../console/settings"
    for name in ("x-standin-named", "keep-alive", "proxy-authenticate"):
        assert name not in answer.headers


def test_the_root_redirects_to_console_and_the_bare_healthz_is_hasuras(relayed: Start) -> None:
    with relayed() as r:
        root = httpx.get(r.gate + "/")
        hasura_health = httpx.get(r.gate + "/healthz")
        gate_health = httpx.get(r.gate + "/_telemetry/v1/healthz")
        version = httpx.get(r.gate + "/v1/version")
    assert (root.status_code, root.headers["location"]) == (302, "console")
    assert (hasura_health.status_code, hasura_health.text) == (200, "OK")
    assert gate_health.json() == {"status": "live"}
    assert version.json() == {"version": "v2.40.0", "server_type": "ce"}


def test_a_streamed_response_arrives_chunk_by_chunk_before_hasura_has_produced_it_all(relayed: Start) -> None:
    size = 40 * CHUNK
    with relayed() as r, httpx.stream("GET", f"{r.gate}/standin/stream?bytes={size}&hold=1") as answer:
        chunks: Iterator[bytes] = answer.iter_raw()
        first = next(chunks)
        # Hasura holds its second chunk until this is released: the first arrived before the last was made.
        assert r.standin.produced == 1
        r.standin.release.set()
        rest = sum(len(chunk) for chunk in chunks)
    assert len(first) + rest == size
    assert r.standin.produced == 40


def test_a_request_body_is_streamed_to_hasura(relayed: Start) -> None:
    parts = [bytes([n]) * (256 * 1024) for n in range(20)]

    def body() -> Iterator[bytes]:
        yield from parts

    with relayed() as r:
        answer = httpx.post(r.gate + "/standin/upload", content=body())
    assert answer.json() == {"bytes": 20 * 256 * 1024, "sha256": hashlib.sha256(b"".join(parts)).hexdigest()}


def test_api_compression_passes_untouched(relayed: Start) -> None:
    query = {"query": "query { standin_now }"}
    headers = {"x-hasura-admin-secret": standin_console.ADMIN_SECRET, "accept-encoding": "gzip"}
    raw = {}
    with relayed() as r:
        for name, base in (("direct", r.hasura), ("gate", r.gate)):
            with httpx.stream("POST", base + "/v1/graphql", json=query, headers=headers) as answer:
                raw[name] = (answer.headers["content-encoding"], answer.headers["content-length"], _read_raw(answer))
    assert raw["gate"] == raw["direct"]
    assert json.loads(gzip.decompress(raw["gate"][2])) == {"data": {"standin_now": "2026-12-01T08:15:02Z"}}


def _read_raw(answer: httpx.Response) -> bytes:
    return b"".join(answer.iter_raw())


@pytest.mark.parametrize("era", standin_console.ERA_NAMES)
def test_each_eras_page_gets_the_script_once_first_in_its_head(relayed: Start, era: str) -> None:
    with relayed(StandIn(era=era)) as r:
        for path in ("/console", "/console/data/default/schema/public"):
            with httpx.stream("GET", r.gate + path) as answer:
                body = _read_raw(answer)
            head = body.split(b"</head>")[0]
            assert body.count(MARKER) == 1
            assert head.index(b"<script " + MARKER) < head.index(b"window.__env = ")
            assert head.index(b"<head>") + len(b"<head>") == head.index(b"<script " + MARKER)
            assert answer.headers["content-length"] == str(len(body))
            assert answer.headers["content-type"] == "text/html; charset=utf-8"
            assert LITERAL not in body


@pytest.mark.parametrize("era", standin_console.ERA_NAMES)
def test_no_script_of_any_era_holds_the_literal_after_the_gate(relayed: Start, era: str) -> None:
    with relayed(StandIn(era=era)) as r:
        holding = 0
        for name in standin_console.script_paths(era):
            path = f"/console/assets/{name}"
            direct = httpx.get(r.hasura + path)
            holding += LITERAL in direct.content
            with httpx.stream("GET", r.gate + path) as answer:
                body = _read_raw(answer)
            assert answer.status_code == 200
            assert answer.headers["content-encoding"] == "gzip"
            assert answer.headers["content-type"] == direct.headers["content-type"]
            assert answer.headers["content-type"].startswith(("text/javascript", "application/javascript"))
            assert answer.headers["content-length"] == str(len(body))
            decoded = gzip.decompress(body)
            assert LITERAL not in decoded
            if LITERAL in direct.content:
                assert "etag" not in answer.headers
                assert f"'ws://{r.gate.removeprefix('http://')}/_telemetry/v1/ws'".encode() in decoded
            else:
                assert decoded == direct.content and answer.headers["etag"] == '"standin"'
        status = httpx.get(r.gate + "/_telemetry/v1/status").json()
        metrics = httpx.get(r.gate + "/_telemetry/v1/metrics").text
    assert holding == 1  # the stand-in itself holds the literal: this test can fail
    assert status["rewrites"] == {"page": 0, "script": 1}
    assert 'console_proxy_proxy_rewrites_total{kind="script"} 1.0' in metrics


def test_with_telemetry_off_the_page_script_says_off(relayed: Start) -> None:
    with relayed(enable_telemetry=False) as r:
        body = httpx.get(r.gate + "/console").content
    assert b"var on = false, gateOnly = false" in body


def test_a_public_url_is_what_pages_scripts_and_forwarded_headers_say(relayed: Start) -> None:
    public = "https://hasura.example.com/behind"
    with relayed(StandIn(era="v2"), public_url=public, allowed_host=("localhost",)) as r:
        page = httpx.get(r.gate + "/console").content
        script = httpx.get(r.gate + "/console/assets/versioned/main.js.gz").content  # httpx decodes the gzip
        seen = dict(httpx.get(r.gate + "/standin/echo").json()["headers"])
    assert b'"wss://hasura.example.com/behind/_telemetry/v1/ws"' in page
    assert b"'wss://hasura.example.com/behind/_telemetry/v1/ws'" in script
    assert seen["x-forwarded-proto"] == "https"


def test_head_of_a_page_has_no_length_of_the_unchanged_page(relayed: Start) -> None:
    with relayed() as r:
        answer = httpx.head(r.gate + "/console")
    assert answer.status_code == 200
    assert "content-length" not in answer.headers


def test_hasura_down_is_502_and_slow_is_504_each_with_a_fixed_body(relayed: Start) -> None:
    with relayed(hasura_read_s=0.5) as r:
        slow = httpx.get(r.gate + "/standin/slow?s=5")
        metrics = httpx.get(r.gate + "/_telemetry/v1/metrics").text
    assert (slow.status_code, slow.json()) == (504, {"error": "hasura did not answer in time"})
    assert 'console_proxy_proxy_relay_failures_total{reason="timeout"} 1.0' in metrics
    with relayed(hasura_url="http://127.0.0.1:1") as r:
        down = httpx.get(r.gate + "/v1/version")
        page = httpx.get(r.gate + "/console")
    assert (down.status_code, down.json()) == (502, {"error": "hasura is unreachable"})
    assert down.headers["content-length"] == str(len(down.content))
    assert page.status_code == 502


def test_a_response_that_breaks_off_is_cut_short_never_completed(relayed: Start) -> None:
    with relayed() as r, pytest.raises(httpx.RemoteProtocolError):
        httpx.get(r.gate + "/standin/broken")


def test_a_host_the_gate_does_not_serve_is_refused_before_the_relay(relayed: Start) -> None:
    with relayed() as r:
        answer = httpx.get(r.gate + "/v1/version", headers={"host": "attacker.example"})
    assert answer.status_code == 400

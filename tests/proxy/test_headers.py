"""What the relay passes, drops and adds, both ways (RFC 9110's hop-by-hop fields; nginx's forwarded headers)."""

from __future__ import annotations

import pytest

from console_proxy.proxy.headers import (
    end_to_end,
    request_headers,
    response_headers,
    websocket_request_headers,
)

END_TO_END = [
    (b"x-hasura-admin-secret", b"s3cret"),
    (b"x-hasura-role", b"admin"),
    (b"authorization", b"Bearer t"),
    (b"cookie", b"a=1"),
    (b"traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
    (b"content-type", b"application/json"),
    (b"accept-encoding", b"gzip"),
]
HOP_BY_HOP = [
    (b"connection", b"keep-alive, X-Named"),
    (b"x-named", b"1"),
    (b"keep-alive", b"timeout=5"),
    (b"te", b"trailers"),
    (b"trailer", b"x-checksum"),
    (b"transfer-encoding", b"chunked"),
    (b"upgrade", b"h2c"),
    (b"proxy-authorization", b"Basic eA=="),
    (b"proxy-connection", b"keep-alive"),
]


def test_hop_by_hop_headers_and_those_connection_names_are_dropped() -> None:
    assert end_to_end([*HOP_BY_HOP, *END_TO_END]) == END_TO_END


def test_a_request_keeps_its_end_to_end_headers_and_gets_the_forwarded_ones() -> None:
    headers = [(b"host", b"gate.example:8080"), (b"expect", b"100-continue"), *HOP_BY_HOP, *END_TO_END]
    assert request_headers(headers, client="10.0.0.7", proto="https") == [
        *END_TO_END,
        (b"x-forwarded-for", b"10.0.0.7"),
        (b"x-forwarded-proto", b"https"),
        (b"x-forwarded-host", b"gate.example:8080"),
    ]


def test_x_forwarded_for_is_extended_and_proto_and_host_are_the_gates() -> None:
    headers = [
        (b"host", b"gate"),
        (b"x-forwarded-for", b"203.0.113.9"),
        (b"x-forwarded-for", b"198.51.100.2"),
        (b"x-forwarded-proto", b"gopher"),
        (b"x-forwarded-host", b"elsewhere"),
    ]
    assert request_headers(headers, client="10.0.0.7", proto="http") == [
        (b"x-forwarded-for", b"203.0.113.9, 198.51.100.2, 10.0.0.7"),
        (b"x-forwarded-proto", b"http"),
        (b"x-forwarded-host", b"gate"),
    ]


def test_a_websocket_handshake_leaves_its_own_fields_to_the_client_library() -> None:
    headers = [
        (b"host", b"gate"),
        (b"upgrade", b"websocket"),
        (b"connection", b"Upgrade"),
        (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
        (b"sec-websocket-version", b"13"),
        (b"sec-websocket-protocol", b"graphql-transport-ws"),
        (b"sec-websocket-extensions", b"permessage-deflate"),
        (b"origin", b"http://gate"),
        (b"user-agent", b"Chromium"),
        (b"cookie", b"a=1"),
        (b"x-hasura-role", b"user"),
    ]
    assert websocket_request_headers(headers, client=None, proto="http") == [
        (b"cookie", b"a=1"),
        (b"x-hasura-role", b"user"),
        (b"x-forwarded-proto", b"http"),
        (b"x-forwarded-host", b"gate"),
    ]


@pytest.mark.parametrize(
    ("location", "passed"),
    [
        (b"console", b"console"),
        (b"../console/settings", b"../console/settings"),
        (b"/console", b"/console"),
        (b"http://hasura:8080/console", b"https://gate.example/console"),
        (b"http://hasura:8080", b"https://gate.example"),
        (b"http://hasura:8080?x=1", b"https://gate.example?x=1"),
        (b"http://hasura:80801/console", b"http://hasura:80801/console"),
        (b"https://elsewhere.example/", b"https://elsewhere.example/"),
    ],
)
def test_a_location_naming_hasura_is_said_as_the_gate_and_a_relative_one_is_left(
    location: bytes, passed: bytes
) -> None:
    assert response_headers(
        [(b"location", location)], upstream="http://hasura:8080", public="https://gate.example"
    ) == [(b"location", passed)]


def test_a_response_keeps_every_set_cookie_and_drops_date_and_hop_by_hop() -> None:
    headers = [
        (b"date", b"Mon, 01 Dec 2026 00:00:00 GMT"),
        (b"set-cookie", b"a=1; Path=/"),
        (b"set-cookie", b"b=2; HttpOnly"),
        (b"content-length", b"12"),
        (b"etag", b'"x"'),
        *HOP_BY_HOP,
    ]
    assert response_headers(headers, upstream="http://hasura:8080", public=None) == [
        (b"set-cookie", b"a=1; Path=/"),
        (b"set-cookie", b"b=2; HttpOnly"),
        (b"content-length", b"12"),
        (b"etag", b'"x"'),
    ]

"""Which headers a relay to Hasura passes, drops and adds, both ways (pure: header lists in, header lists out).

The model is RFC 9110, section 7.6.1: `Connection`, the headers it names, and the hop-by-hop fields
(`Keep-Alive`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`, `Proxy-*`) are the connection's, not the
message's, so they end at the gate; every other header passes untouched (`X-Hasura-*`, `Authorization`,
`Cookie`, `Set-Cookie`, `traceparent`). Added towards Hasura: `X-Forwarded-For` (extended), `-Proto` and `-Host`,
as nginx's `proxy_add_x_forwarded_for` configuration does. Never logged: the admin secret passes through here.
"""

from __future__ import annotations

from collections.abc import Iterable

Headers = list[tuple[bytes, bytes]]

HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"te", b"trailer", b"transfer-encoding", b"upgrade", b"proxy-connection"}
)
# `Expect: 100-continue` was answered by the gate's own server when the body was read; `Host` is Hasura's own.
_NOT_RELAYED_UP = frozenset({b"host", b"expect"})
# The gate's server sets its own Date, as nginx does by default (`proxy_hide_header`).
_NOT_RELAYED_DOWN = frozenset({b"date"})
# What the WebSocket client library sets itself on the handshake to Hasura.
_WEBSOCKET_OWN = frozenset({b"host", b"origin", b"user-agent"})
FORWARDED_FOR = b"x-forwarded-for"
FORWARDED_PROTO = b"x-forwarded-proto"
FORWARDED_HOST = b"x-forwarded-host"


def _connection_tokens(headers: Iterable[tuple[bytes, bytes]]) -> set[bytes]:
    tokens: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            tokens.update(token.strip().lower() for token in value.split(b",") if token.strip())
    return tokens


def end_to_end(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    """`headers` without the hop-by-hop ones: those of HOP_BY_HOP, every `Proxy-*`, and those `Connection` names."""
    headers = list(headers)
    named = _connection_tokens(headers)
    return [
        (name, value)
        for name, value in headers
        if (lower := name.lower()) not in HOP_BY_HOP and lower not in named and not lower.startswith(b"proxy-")
    ]


def get(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The first value of header `name` (lower case)."""
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def forwarded(headers: Headers, *, client: str | None, proto: str, host: bytes | None) -> Headers:
    """`headers` with `X-Forwarded-For` extended by `client` (the values a proxy before the gate wrote stay first),
    and `X-Forwarded-Proto` and `-Host` set to what the client asked for."""
    chain = [value for name, value in headers if name.lower() == FORWARDED_FOR]
    kept = [(n, v) for n, v in headers if n.lower() not in (FORWARDED_FOR, FORWARDED_PROTO, FORWARDED_HOST)]
    if client:
        chain.append(client.encode("latin-1"))
    if chain:
        kept.append((FORWARDED_FOR, b", ".join(chain)))
    kept.append((FORWARDED_PROTO, proto.encode("latin-1")))
    if host:
        kept.append((FORWARDED_HOST, host))
    return kept


def request_headers(headers: Iterable[tuple[bytes, bytes]], *, client: str | None, proto: str) -> Headers:
    """What goes to Hasura with a relayed HTTP request: the end-to-end headers (but Host and Expect) and the
    forwarded ones. `proto` is the scheme the client used (http or https), or the public URL's."""
    headers = list(headers)
    host = get(headers, b"host")
    passed = [(n, v) for n, v in end_to_end(headers) if n.lower() not in _NOT_RELAYED_UP]
    return forwarded(passed, client=client, proto=proto, host=host)


def websocket_request_headers(headers: Iterable[tuple[bytes, bytes]], *, client: str | None, proto: str) -> Headers:
    """What goes to Hasura with a relayed WebSocket handshake besides what the client library sets itself (the
    handshake's own `Sec-WebSocket-*` fields, Host, and the Origin and User-Agent it is given): cookies,
    `Authorization`, `X-Hasura-*` and the forwarded headers."""
    headers = list(headers)
    host = get(headers, b"host")
    passed = [
        (n, v)
        for n, v in end_to_end(headers)
        if (lower := n.lower()) not in _WEBSOCKET_OWN and not lower.startswith(b"sec-websocket-")
    ]
    return forwarded(passed, client=client, proto=proto, host=host)


def response_headers(headers: Iterable[tuple[bytes, bytes]], *, upstream: str, public: str | None) -> Headers:
    """What goes back to the client: the end-to-end headers (but Date), `Set-Cookie` each as it came, and a
    `Location` that names Hasura's own address (`upstream`, scheme://host[:port][/path]) said as the gate's
    (`public`, the same form), as nginx's `proxy_redirect default` does; a relative Location is left as it is."""
    out: Headers = []
    upstream_prefix = upstream.rstrip("/").encode("latin-1")
    for name, value in end_to_end(headers):
        lower = name.lower()
        if lower in _NOT_RELAYED_DOWN:
            continue
        if lower == b"location" and public is not None and _under(value, upstream_prefix):
            value = public.rstrip("/").encode("latin-1") + value[len(upstream_prefix) :]
        out.append((name, value))
    return out


def _under(value: bytes, prefix: bytes) -> bool:
    return value == prefix or value.startswith(prefix + b"/") or value.startswith(prefix + b"?")


def without(headers: Iterable[tuple[bytes, bytes]], *names: bytes) -> Headers:
    """`headers` without any of `names` (lower case)."""
    drop = frozenset(names)
    return [(n, v) for n, v in headers if n.lower() not in drop]

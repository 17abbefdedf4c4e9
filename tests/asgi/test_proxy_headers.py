"""Trusted proxy headers: whom to believe, which hop is the client, what the scope becomes."""

from __future__ import annotations

import pytest

from console_proxy.asgi.proxy_headers import (
    SCOPE_KEY,
    Forwarded,
    TrustedProxies,
    forwarded,
    parse_address,
    resolve,
    trusted_proxies,
)
from console_proxy.core.errors import SettingsError
from console_proxy.core.settings import Settings

PROXY = "10.0.0.1"
TRUSTED = TrustedProxies.parse(["10.0.0.1", "10.1.0.0/16"])


def scope(peer: str = PROXY, kind: str = "http", **headers: str) -> dict[str, object]:
    raw = [(k.replace("_", "-").encode(), v.encode("latin-1")) for k, v in headers.items()]
    return {"type": kind, "scheme": "http" if kind == "http" else "ws", "headers": raw, "client": (peer, 5000)}


@pytest.mark.parametrize(
    ("entries", "peer", "trusted"),
    [
        ([], "127.0.0.1", False),  # none by default: not even loopback
        (["*"], "203.0.113.9", True),
        (["10.0.0.1"], "10.0.0.1", True),
        (["10.0.0.1"], "10.0.0.2", False),
        (["10.0.0.0/8"], "10.200.3.4", True),
        (["::1"], "::1", True),
        (["[::1]"], "::1", True),
        (["127.0.0.1"], "::ffff:127.0.0.1", True),
        (["10.0.0.0/8"], "unknown", False),
    ],
)
def test_who_is_trusted(entries: list[str], peer: str, trusted: bool) -> None:
    assert TrustedProxies.parse(entries).trusts(peer) is trusted


@pytest.mark.parametrize("entry", ["localhost", "10.0.0.0/33", "unix:/run/proxy.sock", "1.2.3"])
def test_an_entry_that_is_no_address_is_refused(entry: str) -> None:
    with pytest.raises(ValueError, match="^" + entry.replace(".", r"\.") + "$"):
        TrustedProxies.parse(["10.0.0.1", entry])
    with pytest.raises(SettingsError):
        trusted_proxies(Settings(forwarded_allow_ips=(entry,)))


@pytest.mark.parametrize(
    ("headers", "said"),
    [
        ({}, None),
        ({"x_forwarded_for": "203.0.113.5"}, Forwarded("203.0.113.5")),
        # What the client wrote left of the proxy's entry is not read.
        ({"x_forwarded_for": "198.51.100.1, 203.0.113.5"}, Forwarded("203.0.113.5")),
        # Hops that are trusted proxies themselves are skipped, from the right.
        ({"x_forwarded_for": "198.51.100.1, 203.0.113.5, 10.1.2.3"}, Forwarded("203.0.113.5")),
        # All trusted: the leftmost.
        ({"x_forwarded_for": "10.1.0.9, 10.1.2.3"}, Forwarded("10.1.0.9")),
        # Several header lines are one list.
        ({"x_forwarded_for": "203.0.113.5", "X_Forwarded_For": "10.1.2.3"}, Forwarded("203.0.113.5")),
        ({"x_forwarded_for": "203.0.113.5:4711"}, Forwarded("203.0.113.5")),
        ({"x_forwarded_for": "[2001:db8::1]:4711"}, Forwarded("2001:db8::1")),
        ({"x_forwarded_for": "unknown"}, Forwarded("unknown")),
        (
            {"x_forwarded_for": "203.0.113.5", "x_forwarded_proto": "https", "x_forwarded_host": "Console.Example.com"},
            Forwarded("203.0.113.5", "https", "console.example.com"),
        ),
        # Lists line up at their right ends: the entries the proxy appended.
        (
            {"x_forwarded_for": "203.0.113.5", "x_forwarded_host": "evil.example, console.example.com"},
            Forwarded("203.0.113.5", None, "console.example.com"),
        ),
        ({"x_forwarded_proto": "gopher", "x_forwarded_host": "a b"}, Forwarded(None, None, None)),
        ({"x_forwarded_proto": "https"}, Forwarded(None, "https", None)),
        (
            {"forwarded": "for=203.0.113.5;proto=https;host=console.example.com"},
            Forwarded("203.0.113.5", "https", "console.example.com"),
        ),
        ({"forwarded": 'for=198.51.100.1, for="[2001:db8::7]:99";proto=http'}, Forwarded("2001:db8::7", "http")),
        ({"forwarded": "for=_hidden"}, Forwarded("unknown")),
        ({"forwarded": "for=203.0.113.5;;garbage"}, None),  # malformed: none of it
        # Both kinds: believed when they agree, neither when they do not.
        ({"x_forwarded_for": "203.0.113.5", "forwarded": "for=203.0.113.5"}, Forwarded("203.0.113.5")),
        ({"x_forwarded_for": "203.0.113.5", "forwarded": "for=198.51.100.1"}, None),
    ],
)
def test_what_a_trusted_proxy_says(headers: dict[str, str], said: Forwarded | None) -> None:
    assert forwarded(scope(**headers), TRUSTED) == said


def test_an_untrusted_peer_says_nothing() -> None:
    assert forwarded(scope("203.0.113.9", x_forwarded_for="198.51.100.1"), TRUSTED) is None
    assert forwarded(scope(x_forwarded_for="198.51.100.1"), TrustedProxies()) is None
    untouched = scope(x_forwarded_for="198.51.100.1")
    assert resolve(untouched, TrustedProxies()) is untouched


def test_resolve_rewrites_client_scheme_and_host_once() -> None:
    original = scope(
        host="127.0.0.1:9695",
        x_forwarded_for="203.0.113.5",
        x_forwarded_proto="https",
        x_forwarded_host="console.example.com",
    )
    resolved = resolve(original, TRUSTED)
    assert (resolved["client"], resolved["scheme"]) == (("203.0.113.5", 0), "https")
    assert [v for k, v in resolved["headers"] if k == b"host"] == [b"console.example.com"]
    assert original["client"] == (PROXY, 5000)  # a new scope: the server's own is left as it was
    # Resolved once: the client is now 203.0.113.5, untrusted, and a second pass changes nothing.
    assert resolve(resolved, TrustedProxies.parse(["*"])) is resolved
    ws = resolve(scope(kind="websocket", x_forwarded_proto="https"), TRUSTED)
    assert ws["scheme"] == "wss" and ws[SCOPE_KEY] == Forwarded(None, "https", None)


@pytest.mark.parametrize(
    ("text", "address"),
    [("192.0.2.1", "192.0.2.1"), ("[::1]", "::1"), ("::ffff:10.0.0.1", "10.0.0.1"), ("_x", None), ("", None)],
)
def test_parse_address(text: str, address: str | None) -> None:
    parsed = parse_address(text)
    assert (str(parsed) if parsed is not None else None) == address

"""Who may write: the request's Origin and Sec-Fetch-Site against the console's own origin (pure: headers in, a
decision out)."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import Scope

from console_proxy.asgi.proxy_headers import scheme_forwarded

_DEFAULT_PORTS = {"http": ":80", "https": ":443", "ws": ":80", "wss": ":443"}


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of header `name` (lower case), as latin-1 text."""
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _netloc(scheme: str, netloc: str) -> str:
    netloc = netloc.strip().lower()
    return netloc.removesuffix(_DEFAULT_PORTS.get(scheme, "\0"))


def normalize_origin(origin: str) -> str | None:
    """`scheme://host[:port]` in lower case without a default port; None for anything else ("null" included)."""
    scheme, sep, rest = origin.strip().partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in ("http", "https") or not rest or any(c in rest for c in "/?#@ "):
        return None
    return f"{scheme}://{_netloc(scheme, rest)}"


def allowed_origins(origins: Iterable[str]) -> frozenset[str]:
    """The operator's `--allowed-origin` values, normalized once."""
    return frozenset(n for n in (normalize_origin(o) for o in origins) if n is not None)


# The origin decisions that are not an allowed origin's own name: no Origin at all, and the console's own.
NO_ORIGIN = "-"
OWN_ORIGIN = "self"


def origin_of(scope: Scope, allowed: frozenset[str]) -> str | None:
    """Where a request says it comes from, as a decision: None for a page elsewhere (refused), NO_ORIGIN for a
    client that sends no Origin (a server, a CLI, curl), OWN_ORIGIN for the console's own page, or the normalized
    `--allowed-origin` it matched. Never the raw header: a client must not make new names by rewriting it.

    The console's own origin is the one the request was sent to: its Host (the port included). The scheme counts
    only when a trusted proxy gave it (`proxy_headers`); otherwise a TLS-terminating proxy in front would make
    every page look foreign. `Sec-Fetch-Site: cross-site` is foreign unless the Origin is allowed.
    """
    origin = header(scope, b"origin")
    site = (header(scope, b"sec-fetch-site") or "").strip().lower()
    if origin is None:
        return None if site == "cross-site" else NO_ORIGIN
    normalized = normalize_origin(origin)
    if normalized is None:
        return None  # "null" (a sandboxed frame, a file: page) or garbage
    if normalized in allowed:
        return normalized
    if site == "cross-site":
        return None
    host = header(scope, b"host")
    scheme, _, netloc = normalized.partition("://")
    if host is None or netloc != _netloc(scheme, host):
        return None
    if scheme_forwarded(scope) and scheme != _HTTP_SCHEME.get(str(scope.get("scheme")), ""):
        return None
    return OWN_ORIGIN


_HTTP_SCHEME = {"http": "http", "ws": "http", "https": "https", "wss": "https"}


def foreign_origin(scope: Scope, allowed: frozenset[str]) -> bool:
    """True when a browser says this request comes from a page that is neither the console's nor an allowed one
    (`origin_of` is None)."""
    return origin_of(scope, allowed) is None

"""Who may write: the request's Origin and Sec-Fetch-Site against the console's own origin (pure: headers in, a
decision out)."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import Scope

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


def foreign_origin(scope: Scope, allowed: frozenset[str]) -> bool:
    """True when a browser says this request comes from a page that is neither the console's nor an allowed one.

    The console's own origin is the one the request was sent to: its Host (the port included, the scheme not,
    so a TLS-terminating proxy in front does not matter). `Sec-Fetch-Site: cross-site` is foreign unless the
    Origin is allowed; a request with neither header (a server, a CLI, curl) is not a page's and passes.
    """
    origin = header(scope, b"origin")
    site = (header(scope, b"sec-fetch-site") or "").strip().lower()
    if origin is None:
        return site == "cross-site"
    normalized = normalize_origin(origin)
    if normalized is None:
        return True  # "null" (a sandboxed frame, a file: page) or garbage
    if normalized in allowed:
        return False
    if site == "cross-site":
        return True
    host = header(scope, b"host")
    scheme = normalized.partition("://")[0]
    return host is None or normalized.partition("://")[2] != _netloc(scheme, host)

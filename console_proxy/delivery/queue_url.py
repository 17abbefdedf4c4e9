"""The queue's URL, read without the redis package: `sqlite`, `redis://`, `rediss://`, or a Sentinel form.

redis-py has no URL for Sentinel, so this is ours: `redis+sentinel://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]/
SERVICE[/DB]` (`rediss+sentinel://` for TLS to the master); PORT defaults to 26379. The password is the master's.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import unquote, urlsplit

SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
SENTINEL_PORT = 26379


@dataclasses.dataclass(frozen=True)
class SentinelURL:
    """The sentinels to ask, the service (master) name, the database and the master's credentials."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int
    username: str | None
    password: str | None
    ssl: bool


def parse_sentinel_url(url: str) -> SentinelURL | None:
    """The Sentinel form's parts; None when `url` is not one. ValueError when it is one but malformed."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in SENTINEL_SCHEMES:
        return None
    authority, _, path = rest.partition("/")
    userinfo, at, hosts = authority.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username, password = (unquote(user) or None), (unquote(secret) if colon else None)
    sentinels = []
    for host in hosts.split(","):
        name, colon, port = host.rpartition(":") if ":" in host else (host, "", "")
        if not name or any(c.isspace() or c in "/?#@" for c in name):
            raise ValueError(f"bad sentinel address {host!r}")
        number = int(port) if colon else SENTINEL_PORT  # ValueError when not a number
        if not 0 < number < 65536:
            raise ValueError(f"bad sentinel port {port!r}")
        sentinels.append((name, number))
    parts = [part for part in path.split("/") if part]
    if not 1 <= len(parts) <= 2 or (len(parts) == 2 and not parts[1].isdecimal()) or "?" in path:
        raise ValueError("expected /SERVICE or /SERVICE/DB")
    db = int(parts[1]) if len(parts) == 2 else 0
    return SentinelURL(tuple(sentinels), parts[0], db, username, password, scheme.startswith("rediss"))


def display_queue_url(url: str) -> str:
    """`url` without user, password or query (either may hold a credential)."""
    sentinel = parse_sentinel_url(url)
    if sentinel is not None:
        hosts = ",".join(f"{host}:{port}" for host, port in sentinel.sentinels)
        scheme = SENTINEL_SCHEMES[1] if sentinel.ssl else SENTINEL_SCHEMES[0]
        return f"{scheme}://{hosts}/{sentinel.service}/{sentinel.db}"
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    try:
        if parts.port is not None:
            netloc += f":{parts.port}"
    except ValueError:
        pass
    return f"{parts.scheme}://{netloc}{parts.path}"

"""Trusted proxy headers: the client's address, scheme and host as the operator's own proxies tell them
(`--forwarded-allow-ips`), never as a client says (docs/design.md, "Origins, hosts and limits").

From a peer that is one of the trusted proxies, `X-Forwarded-For`/`-Proto`/`-Host` and RFC 7239's `Forwarded` are
read; the client is the rightmost hop that is not itself a trusted proxy (each proxy appends the address it saw, so
what is left of that hop is whatever the client wrote). From any other peer they are ignored. When a request
carries both kinds and they disagree, neither is believed: a proxy appends to one kind and passes the other on as
the client wrote it, and which one it sets is not known here.

Pure apart from the middleware: a scope in, a scope out. `resolve()` marks the scope, so a second pass (the
standalone app's middleware, then TelemetryMiddleware's own) changes nothing.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from console_proxy.core.errors import SettingsError
from console_proxy.core.settings import Settings

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# The scope key that holds what was resolved (a Forwarded), so that a scope is resolved once.
SCOPE_KEY = "console_proxy.forwarded"
TRUST_EVERYONE = "*"
_SCHEMES = frozenset({"http", "https", "ws", "wss"})
# A Host value: a DNS name or IPv4 address, or a bracketed IPv6 address, with an optional port.
_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")
# One pair of a Forwarded element: name=token or name="quoted string".
_PAIR = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^;,\s]*)\s*')


@dataclasses.dataclass(frozen=True)
class TrustedProxies:
    """The peers whose proxy headers are believed: `*`, or addresses and networks."""

    everyone: bool = False
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> TrustedProxies:
        """From `--forwarded-allow-ips` items (IP addresses, CIDR networks, or `*`); ValueError names a bad one."""
        everyone = False
        networks: list[IPNetwork] = []
        for entry in (item.strip() for item in entries):
            if not entry:
                continue
            if entry == TRUST_EVERYONE:
                everyone = True
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                raise ValueError(entry) from None
        return cls(everyone, tuple(networks))

    def __bool__(self) -> bool:
        return self.everyone or bool(self.networks)

    def trusts(self, address: str | None) -> bool:
        if self.everyone:
            return True
        ip = parse_address(address)
        return ip is not None and any(ip in network for network in self.networks)


def trusted_proxies(settings: Settings) -> TrustedProxies:
    """The trusted proxies of `settings.forwarded_allow_ips`; SettingsError (one sentence) for an entry that is
    neither an address, a network nor `*`."""
    try:
        return TrustedProxies.parse(settings.forwarded_allow_ips)
    except ValueError as exc:
        raise SettingsError(
            f"forwarded_allow_ips holds {str(exc)!r}; expected IP addresses or networks such as 10.0.0.0/8, or *."
        ) from None


@dataclasses.dataclass(frozen=True)
class Forwarded:
    """What a trusted proxy said of the client's request; None where it said nothing usable."""

    client: str | None = None
    scheme: str | None = None
    host: str | None = None


def parse_address(text: str | None) -> IPAddress | None:
    """An IP address from a hop (`192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]:4711`, `2001:db8::1`); None when it
    is none (`unknown`, an obfuscated `_name`, garbage). IPv4-mapped IPv6 addresses become IPv4."""
    if not text:
        return None
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _values(scope: Scope, name: bytes) -> list[str]:
    # Several header lines of one name are one comma-separated list, in order (RFC 9110, 5.3).
    items: list[str] = []
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            items += [item.strip() for item in bytes(value).decode("latin-1").split(",")]
    return items


def _chosen(hops: list[str], trusted: TrustedProxies) -> int:
    """The index of the rightmost hop that is not a trusted proxy; the leftmost when all are."""
    for index in range(len(hops) - 1, -1, -1):
        if not trusted.trusts(hops[index]):
            return index
    return 0


def _aligned(items: list[str], index: int, hops: int) -> str | None:
    # Each proxy appends to every list it keeps, so the lists line up at their right ends.
    if not items:
        return None
    return items[max(0, min(len(items) - 1, index - (hops - len(items))))]


def _scheme(value: str | None) -> str | None:
    value = (value or "").strip().lower()
    return value if value in _SCHEMES else None


def _host(value: str | None) -> str | None:
    value = (value or "").strip()
    return value.lower() if _HOST.fullmatch(value) else None


def _from_x_forwarded(scope: Scope, trusted: TrustedProxies) -> Forwarded | None:
    hops = _values(scope, b"x-forwarded-for")
    protos = _values(scope, b"x-forwarded-proto")
    hosts = _values(scope, b"x-forwarded-host")
    if not (hops or protos or hosts):
        return None
    index = _chosen(hops, trusted) if hops else len(protos or hosts) - 1
    client = _address_text(hops[index]) if hops else None
    return Forwarded(client, _scheme(_aligned(protos, index, len(hops))), _host(_aligned(hosts, index, len(hops))))


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def _elements(scope: Scope) -> list[dict[str, str]]:
    elements = []
    for key, value in scope.get("headers", ()):
        if key.lower() != b"forwarded":
            continue
        text = bytes(value).decode("latin-1")
        if not text.strip():
            continue
        position = 0
        element: dict[str, str] = {}
        while position < len(text):
            match = _PAIR.match(text, position)
            if match is None:
                return []  # malformed: believe none of it
            element.setdefault(match.group(1).lower(), _unquote(match.group(2)))
            position = match.end()
            if position < len(text) and text[position] == ",":
                elements.append(element)
                element = {}
            elif position < len(text) and text[position] != ";":
                return []
            position += 1
        elements.append(element)
    return elements


def _from_forwarded(scope: Scope, trusted: TrustedProxies) -> Forwarded | None:
    elements = _elements(scope)
    if not elements:
        return None
    hops = [element.get("for", "unknown") for element in elements]
    chosen = elements[_chosen(hops, trusted)]
    return Forwarded(_address_text(chosen.get("for")), _scheme(chosen.get("proto")), _host(chosen.get("host")))


def _address_text(hop: str | None) -> str | None:
    ip = parse_address(hop)
    return str(ip) if ip is not None else ("unknown" if hop is not None else None)


def forwarded(scope: Scope, trusted: TrustedProxies) -> Forwarded | None:
    """What the proxy headers say of the client, when the peer is a trusted proxy; None otherwise, when they say
    nothing, or when both kinds are present and disagree."""
    if not trusted:
        return None
    peer = scope.get("client")
    if not trusted.trusts(str(peer[0]) if peer else None):
        return None
    legacy, standard = _from_x_forwarded(scope, trusted), _from_forwarded(scope, trusted)
    if legacy is not None and standard is not None:
        return legacy if legacy == standard else None
    return legacy if legacy is not None else standard


def resolve(scope: Scope, trusted: TrustedProxies) -> Scope:
    """`scope` with its client, scheme and Host header as a trusted proxy gave them (and marked as resolved); the
    scope itself when the peer is not trusted or it was resolved before."""
    if not trusted or SCOPE_KEY in scope or scope["type"] not in ("http", "websocket"):
        return scope  # (nobody trusted, the default: nothing to read, and no copy of the scope per request)
    said = forwarded(scope, trusted)
    resolved = dict(scope)
    resolved[SCOPE_KEY] = said
    if said is None:
        return resolved
    if said.client is not None:
        resolved["client"] = (said.client, 0)
    if said.scheme is not None:
        secure = said.scheme in ("https", "wss")
        if scope["type"] == "websocket":
            resolved["scheme"] = "wss" if secure else "ws"
        else:
            resolved["scheme"] = "https" if secure else "http"
    if said.host is not None:
        host = said.host.encode("latin-1")
        resolved["headers"] = [(k, v) for k, v in scope.get("headers", ()) if k.lower() != b"host"] + [(b"host", host)]
    return resolved


def scheme_forwarded(scope: Scope) -> bool:
    """Whether a trusted proxy gave this request's scheme (so it is the browser's, not the last hop's)."""
    said = scope.get(SCOPE_KEY)
    return isinstance(said, Forwarded) and said.scheme is not None


class ProxyHeaders:
    """ASGI middleware: every request and WebSocket downstream sees the client, scheme and Host that the trusted
    proxies gave (`resolve`); with no trusted proxy, proxy headers change nothing. Outermost, before the Host check.
    """

    def __init__(self, app: ASGIApp, *, trusted: TrustedProxies) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(resolve(scope, self.trusted), receive, send)

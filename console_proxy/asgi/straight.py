"""The straight path for the one request a console sends most: `POST /_telemetry/v1/events` for a Host this server
answers, with no trusted proxy configured. It skips Starlette's router and the generic middleware in front of the
telemetry middleware, none of which would change its answer: the proxy headers are read only from trusted proxies
(none), the Host check passes (only a plain name the check allows takes this path), the WebSocket limits concern
WebSockets. The answer is the telemetry middleware's, counted as `RequestMetrics` counts it (docs/design.md,
"The path of a batch")."""

from __future__ import annotations

import re
from collections.abc import Iterable

from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

EVENTS_PATH = "/_telemetry/v1/events"
# A lower-case name and an optional port: what every version of Starlette's Host check reads as that name.
_PLAIN_HOST = re.compile(rb"([a-z0-9.-]+)(?::[0-9]{1,5})?")


def straight_hosts(allowed_hosts: Iterable[str], *, proxies_trusted: bool) -> frozenset[bytes]:
    """The Host names (as bytes) that may take the straight path: the allowed ones that are plain names, none
    when a proxy is trusted (its headers must be read) or any host is allowed (`*`: the check is off anyway, but
    the general path is kept for it)."""
    hosts = list(allowed_hosts)
    if proxies_trusted or "*" in hosts:
        return frozenset()
    return frozenset(h.encode() for h in hosts if _PLAIN_HOST.fullmatch(h.encode()))


class StraightApp(Starlette):
    """A Starlette app whose events path, for a plain trusted Host, goes straight to `straight` (the telemetry
    middleware wrapped in the request counting); any other request goes through the whole app as before."""

    straight: ASGIApp | None = None
    straight_hosts: frozenset[bytes] = frozenset()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        straight = self.straight
        if (
            straight is not None
            and scope["type"] == "http"
            and scope["path"] == EVENTS_PATH
            and scope["method"] == "POST"
            and not scope.get("root_path")
            and self._plain_trusted_host(scope)
        ):
            scope["app"] = self
            await straight(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    def _plain_trusted_host(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"host":
                match = _PLAIN_HOST.fullmatch(value)
                return match is not None and match.group(1) in self.straight_hosts
        return False

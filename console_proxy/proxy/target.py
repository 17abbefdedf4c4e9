"""Where a relayed request goes and how the client named the gate (pure: a scope in, URLs out)."""

from __future__ import annotations

import dataclasses
from urllib.parse import quote, urlsplit

from starlette.types import Scope

from console_proxy.proxy.headers import get


@dataclasses.dataclass(frozen=True)
class Target:
    """The Hasura server relayed to (`base`: scheme://host[:port][/path], no trailing slash) and, when the operator
    gave one, the gate's public URL (`--public-url`), which then says what the client used (scheme, host, path)."""

    base: str
    public_url: str | None = None

    @classmethod
    def of(cls, hasura_url: str, public_url: str | None) -> Target:
        return cls(hasura_url.rstrip("/"), public_url.rstrip("/") if public_url else None)

    def url(self, scope: Scope) -> str:
        """The URL at Hasura for this request: the base, the path as the client sent it, the query."""
        raw = scope.get("raw_path")
        path = bytes(raw).decode("latin-1") if raw else quote(scope["path"])
        query = bytes(scope.get("query_string", b"")).decode("latin-1")
        return self.base + path + (f"?{query}" if query else "")

    def websocket_url(self, scope: Scope) -> str:
        url = self.url(scope)
        return "wss" + url[len("https") :] if url.startswith("https") else "ws" + url[len("http") :]

    def scheme(self, scope: Scope) -> str:
        """http or https: as the client reached the gate (the public URL's when given)."""
        if self.public_url is not None:
            return urlsplit(self.public_url).scheme
        return "https" if scope.get("scheme") in ("https", "wss") else "http"

    def host(self, scope: Scope) -> str | None:
        """The Host the client asked for, or the address it connected to when it sent none."""
        value = get(scope.get("headers", ()), b"host")
        if value is not None:
            return value.decode("latin-1")
        server = scope.get("server")
        if not server:
            return None
        host, port = server[0], server[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"

    def public_base(self, scope: Scope) -> str | None:
        """scheme://host[:port][/path] of the gate as the client knows it (for a Location that names Hasura)."""
        if self.public_url is not None:
            return self.public_url
        host = self.host(scope)
        return f"{self.scheme(scope)}://{host}" if host else None

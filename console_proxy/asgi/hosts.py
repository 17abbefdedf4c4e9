"""Which Host names the standalone server answers: a request for any other name is refused before anything
else (DNS rebinding)."""

from __future__ import annotations

from urllib.parse import urlsplit

from console_proxy.core.settings import Settings
from console_proxy.hasura.endpoints import TELEMETRY_HOST

# Always answered, whatever the bound address: the loopback names, and the name of Hasura's collector (a host alias
# for it brings the Hasura server's own posts here; only Hasura's DNS can point a page of that name anywhere).
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def trusted_hosts(settings: Settings) -> list[str]:
    """The Host names a server with these settings answers: the bound address, localhost, the collector's name,
    the `--public-url` host, `--allowed-host`.

    For Starlette's TrustedHostMiddleware: `TrustedHostMiddleware(app, allowed_hosts=trusted_hosts(settings))`.
    """
    bound = settings.host.strip().lower()
    if ":" in bound and not bound.startswith("["):
        bound = f"[{bound}]"
    public = [urlsplit(settings.public_url).hostname or ""] if settings.public_url else []
    names = [bound, *LOOPBACK_HOSTS, TELEMETRY_HOST, *public, *settings.allowed_host]
    return list(dict.fromkeys(names))

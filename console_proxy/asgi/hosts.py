"""Which Host names the standalone server answers: a request for any other name is refused before anything
else (DNS rebinding)."""

from __future__ import annotations

from console_proxy.core.settings import Settings

# Always answered, whatever the bound address: the loopback names.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def trusted_hosts(settings: Settings) -> list[str]:
    """The Host names a server with these settings answers: the bound address, localhost, `--allowed-host`.

    For Starlette's TrustedHostMiddleware: `TrustedHostMiddleware(app, allowed_hosts=trusted_hosts(settings))`.
    """
    bound = settings.host.strip().lower()
    if ":" in bound and not bound.startswith("["):
        bound = f"[{bound}]"
    names = [bound, *LOOPBACK_HOSTS, *settings.allowed_host]
    return list(dict.fromkeys(names))

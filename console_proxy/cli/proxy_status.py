"""`console-proxy status` in reverse-proxy mode: where the gate relays to, and the rewrites the running gate made."""

from __future__ import annotations

import json

import httpx

from console_proxy.core.settings import Settings
from console_proxy.proxy.rewrite import PAGE, SCRIPT

STATUS_PATH = "/_telemetry/v1/status"
ASK_TIMEOUT_S = 2.0


def gate_url(settings: Settings) -> str:
    """Where the gate these settings describe answers on this machine."""
    host = settings.host.strip()
    if host in ("0.0.0.0", "", "::"):
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    scheme = "https" if settings.ssl_certfile is not None else "http"
    return f"{scheme}://{host}:{settings.port}"


def proxy_lines(settings: Settings, *, transport: httpx.BaseTransport | None = None) -> list[str]:
    """What is relayed where, and the rewrites counted by the gate running with these settings (asked once)."""
    if settings.hasura_url is None:
        return []
    from console_proxy.cli.status import display_url

    decides = (
        "the gate's decision says on (--gate-decides-console)"
        if settings.gate_decides_console
        else "the gate's decision and Hasura's page both say on"
    )
    lines = [
        f"reverse proxy: relaying to {display_url(settings.hasura_url)}; the console's telemetry is on when {decides}"
    ]
    base = gate_url(settings)
    try:
        # Only counts are read back; the gate's own certificate may be from a private CA.
        with httpx.Client(timeout=ASK_TIMEOUT_S, trust_env=False, verify=False, transport=transport) as client:
            answer = client.get(base + STATUS_PATH)
        rewrites = json.loads(answer.content).get("rewrites") if answer.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError):
        rewrites = None
    if not isinstance(rewrites, dict):
        lines.append(f"rewrites: unknown (no gate in reverse-proxy mode answers at {base})")
        return lines
    pages, scripts = rewrites.get(PAGE, 0), rewrites.get(SCRIPT, 0)
    lines.append(f"rewrites: {pages} console pages given the page script, {scripts} scripts (the gate at {base})")
    return lines

"""Telemetry sources: each parses its own inbound bodies and keeps only the fields that may leave.

A source is a `Source` (base.py) in a module of its own; it is reachable once its endpoint is in
`HTTP_SOURCES` (path -> source). The middleware reads, limits and hands the body over; the runtime parses,
builds, counts and keeps (`TelemetryRuntime.ingest`), the same way for every source.
"""

from __future__ import annotations

from console_proxy.sources import cli, console, server
from console_proxy.sources.base import Built, Context, Source

EVENTS_PATH = "/_telemetry/v1/events"
WS_PATH = "/_telemetry/v1/ws"
SERVER_PATH = "/_telemetry/v1/server"
CLI_PATH = "/_telemetry/v1/cli"
# Hasura's own collector paths (docs/design.md, "Hasura's collector paths"): the console's socket, and the one POST
# of the server and the CLI, routed by topic (sources/hasura_http.py).
HASURA_WS_PATH = "/v1/ws"
HASURA_HTTP_PATH = "/v1/http"
# Where the console's WebSocket is taken.
WS_PATHS = frozenset({WS_PATH, HASURA_WS_PATH})

# POST endpoints, by path under the app's root path.
HTTP_SOURCES: dict[str, Source] = {
    EVENTS_PATH: console.SOURCE,
    SERVER_PATH: server.SOURCE,
    CLI_PATH: cli.SOURCE,
}
# What the WebSocket's text messages are.
WEBSOCKET_SOURCE: Source = console.SOURCE

__all__ = [
    "CLI_PATH",
    "EVENTS_PATH",
    "HASURA_HTTP_PATH",
    "HASURA_WS_PATH",
    "HTTP_SOURCES",
    "SERVER_PATH",
    "WEBSOCKET_SOURCE",
    "WS_PATH",
    "WS_PATHS",
    "Built",
    "Context",
    "Source",
]

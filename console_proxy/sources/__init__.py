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
    "HTTP_SOURCES",
    "SERVER_PATH",
    "WEBSOCKET_SOURCE",
    "WS_PATH",
    "Built",
    "Context",
    "Source",
]

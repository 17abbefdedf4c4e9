"""Where Hasura's own clients send their telemetry: constants in their code that no setting of theirs changes.

The console's socket is `telemetryServer` in the console's Endpoints.ts (Endpoints.js before); the server posts to
`telemetryUrl` of server/src-lib/Hasura/Server/Telemetry.hs and the CLI to `Endpoint` of cli/telemetry/telemetry.go.
The gate answers the same paths (`sources.HASURA_WS_PATH`, `sources.HASURA_HTTP_PATH`), so a host alias for
TELEMETRY_HOST reaches it.
"""

from __future__ import annotations

TELEMETRY_HOST = "telemetry.hasura.io"
CONSOLE_SOCKET_URL = f"wss://{TELEMETRY_HOST}/v1/ws"
HTTP_URL = f"https://{TELEMETRY_HOST}/v1/http"

"""Adversarial regressions: ways a hostile or careless browser tried to get text out, or the server down.

Each test here failed before the fix committed with it, against a real `console-proxy serve`.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import websockets.exceptions
import websockets.sync.client
from servers import serving

SERVER_UUID = "11111111-2222-4333-8444-555555555555"
CANARY = "qzvkwcanary"


def test_websocket_handshakes_do_not_write_their_path_or_query_to_the_log(tmp_path: Path) -> None:
    # uvicorn logs every WebSocket handshake with its path and query string even without an access log.
    with serving(tmp_path, "--state-dir", str(tmp_path / "state"), "--server-uuid", SERVER_UUID) as served:
        ws_base = served.base.replace("http://", "ws://")
        with websockets.sync.client.connect(f"{ws_base}/_telemetry/v1/ws?db={CANARY}") as ws:
            ws.send('{"events": [{"type": "A/B", "route": "/console/data/x"}]}')
            assert ws.recv(timeout=10) == '{"accepted":1,"dropped":0}'
        for path in (f"/console/data/{CANARY}/schema/public?row={CANARY}", f"/_telemetry/v1/ws/{CANARY}"):
            with contextlib.suppress(websockets.exceptions.InvalidStatus):
                websockets.sync.client.connect(ws_base + path).close()
    assert "Application shutdown complete." in served.output()
    assert CANARY not in served.output()

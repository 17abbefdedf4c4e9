"""The wheel as an operator installs it: a clean virtual environment without the test extra."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import websockets.sync.client

from support.servers import start_serve

ROOT = Path(__file__).parent.parent
INSTALL_TIMEOUT_S = 600


def _run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_plain_install_of_the_wheel_serves_the_websocket(tmp_path: Path) -> None:
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(tmp_path / "dist"), str(ROOT))
    (wheel,) = (tmp_path / "dist").glob("console_proxy-*.whl")
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", str(venv))
    python = str(venv / "bin" / "python")
    _run(python, "-m", "pip", "install", "--quiet", str(wheel))
    # Nothing of the test extra came along: the runtime dependencies alone must serve WebSocket.
    probe = "import importlib.util as u; print([m for m in ('pytest', 'hypothesis') if u.find_spec(m)])"
    assert _run(python, "-c", probe).strip() == "[]"

    state = tmp_path / "state"
    served = start_serve(tmp_path, "--state-dir", str(state), python=python, ready_path="/readyz")
    try:
        assert served.proc.poll() is None, served.output()
        assert "websocket:" not in served.output()
        url = served.base.replace("http://", "ws://") + "/_telemetry/v1/ws"
        with websockets.sync.client.connect(url) as ws:
            for route in ("/console/data/db1/schema/public/tables/users/browse", "/console/settings/about"):
                ws.send(json.dumps({"topic": "console", "data": {"event_type": "Data/SET_TABLE", "url": route}}))
                assert json.loads(ws.recv(timeout=10)) == {"accepted": 1, "dropped": 0}
        recent = httpx.get(served.base + "/_telemetry/v1/recent").json()
        assert [event["url"] for event in recent][-2:] == [
            "/data/SOURCE/schema/SCHEMA/tables/TABLE/browse",
            "/settings/about",
        ]
    finally:
        assert served.stop() == 0, served.output()

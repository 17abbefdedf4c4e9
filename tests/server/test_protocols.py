"""The request deadline of both HTTP protocols, against a real uvicorn server on loopback."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from console_proxy.asgi.app import create_app
from console_proxy.core.settings import Settings
from console_proxy.server.protocols import timed_protocol

from support.servers import uvicorn_server


def settings(tmp_path: Path) -> Settings:
    return Settings(state_dir=tmp_path / "state", server_uuid="11111111-2222-4333-8444-555555555555")


@pytest.mark.parametrize("httptools", [True, False], ids=["httptools", "h11"])
def test_a_request_not_sent_in_time_is_cut_off_and_a_prompt_one_is_answered(tmp_path: Path, httptools: bool) -> None:
    app = create_app(settings(tmp_path), env={})
    with uvicorn_server(app, http=timed_protocol(0.5, httptools=httptools)) as base:
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as slow, socket.create_connection(("127.0.0.1", port)) as ok:
            slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            ok.settimeout(30)
            for _ in range(2):  # kept alive: the deadline starts again for the next request
                ok.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                assert ok.recv(12) == b"HTTP/1.1 200"
                ok.recv(1000)
            slow.settimeout(30)
            assert slow.recv(100) == b""  # closed, nothing answered
            assert ok.recv(100) == b""  # idle past the deadline after its last response: closed too

"""uvicorn as `serve` configures it: the listening socket and its accepted connections."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from console_proxy.asgi.app import create_app
from console_proxy.core.settings import Settings
from console_proxy.server.config import ListenError, ProxyServer, listening_socket, server_config

SERVER_UUID = "11111111-2222-4333-8444-555555555555"


def _read_response(client: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += client.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.lower().split(b"\r\n") if line.startswith(b"content-length")
    )
    while len(body) < length:
        body += client.recv(65536)
    return head.split(b" ", 2)[1]


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_every_accepted_connection_has_tcp_nodelay(tmp_path: Path, loop: str) -> None:
    # Without TCP_NODELAY a response written in two parts (headers, body) waits for the client's delayed ACK:
    # about 40 ms for every request on a kept-alive connection. Checked on the socket itself, for both loops.
    settings = Settings(state_dir=tmp_path, port=0, server_uuid=SERVER_UUID)
    config = server_config(create_app(settings), settings)
    config.loop = loop
    sock = listening_socket(settings.host, 0)
    server = ProxyServer(config, on_reload=lambda: None)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)
        with socket.create_connection(sock.getsockname()[:2]) as client:
            for _ in range(3):  # kept alive: each response written in two parts, headers then body
                client.sendall(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
                assert _read_response(client) == b"200"
            options = [
                conn.transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                for conn in list(server.server_state.connections)
            ]
        assert len(options) == 1 and options[0] != 0
    finally:
        server.should_exit = True
        thread.join(15)


def test_a_taken_port_is_one_sentence_naming_the_address() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ListenError) as caught:
            listening_socket("127.0.0.1", port)
    assert str(caught.value) == (
        f"cannot listen on 127.0.0.1:{port}: Address already in use; another server holds it: stop it or give"
        " another --port."
    )

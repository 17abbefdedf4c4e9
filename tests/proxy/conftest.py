"""The gate in reverse-proxy mode in front of the Hasura stand-in: both real uvicorn servers on loopback ports."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console_proxy.asgi.app import create_app
from console_proxy.core.settings import Settings

from support.hasura_standin import Relayed, StandIn, Start, serve_standin
from support.servers import uvicorn_server

SERVER_UUID = "11111111-2222-4333-8444-555555555555"


@pytest.fixture
def relayed(tmp_path: Path) -> Start:
    """`with relayed(standin, **settings) as r:` the stand-in, and the gate relaying to it with those settings."""

    @contextlib.contextmanager
    def start(standin: StandIn | None = None, **settings: Any) -> Iterator[Relayed]:
        with serve_standin(standin) as (served, hasura):
            options = {"hasura_url": hasura, "state_dir": tmp_path / "state", "server_uuid": SERVER_UUID, **settings}
            app = create_app(Settings(**options), env={"HOME": str(tmp_path)})
            # As `serve` runs it: the peer is the socket's, never what a client claims in X-Forwarded-For.
            with uvicorn_server(app, proxy_headers=False) as gate:
                yield Relayed(served, hasura, gate, app)

    return start

"""GraphQL subscriptions through the gate: both of Hasura's protocols, close codes, refusals, no idle limit."""

from __future__ import annotations

import json
import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from console_proxy.proxy.websocket import sendable

from support.hasura_standin import Start
from support.standin_console import ADMIN_SECRET

TRANSPORT_WS = Subprotocol("graphql-transport-ws")
INIT = {"type": "connection_init", "payload": {"headers": {"x-hasura-admin-secret": ADMIN_SECRET}}}


def ws(base: str) -> str:
    return base.replace("http://", "ws://")


def receive(socket: ClientConnection) -> dict[str, object]:
    message = json.loads(socket.recv(timeout=10))
    assert isinstance(message, dict)
    return message


@pytest.mark.parametrize("path", ["/v1/graphql", "/v1alpha1/graphql"])
def test_a_graphql_ws_subscription_runs_through_the_gate(relayed: Start, path: str) -> None:
    with relayed() as r, connect(ws(r.gate) + path, subprotocols=[TRANSPORT_WS]) as socket:
        assert socket.subprotocol == "graphql-transport-ws"
        socket.send(json.dumps(INIT))
        assert receive(socket) == {"type": "connection_ack"}
        socket.send(
            json.dumps({"id": "7", "type": "subscribe", "payload": {"query": "subscription { standin_ticks }"}})
        )
        ticks = [receive(socket) for _ in range(4)]
        assert r.standin.protocol_headers == [["graphql-transport-ws"]]
    assert ticks == [
        *({"id": "7", "type": "next", "payload": {"data": {"standin_ticks": n}}} for n in (1, 2, 3)),
        {"id": "7", "type": "complete"},
    ]


def test_the_apollo_protocol_is_chosen_by_hasura_from_the_header_as_it_came(relayed: Start) -> None:
    with relayed() as r, connect(ws(r.gate) + "/v1/graphql", subprotocols=[Subprotocol("graphql-ws")]) as socket:
        assert socket.subprotocol == "graphql-ws"
        socket.send(json.dumps(INIT))
        assert [receive(socket), receive(socket)] == [{"type": "connection_ack"}, {"type": "ka"}]
        socket.send(json.dumps({"id": "1", "type": "start", "payload": {"query": "subscription { standin_ticks }"}}))
        assert receive(socket) == {"id": "1", "type": "data", "payload": {"data": {"standin_ticks": 1}}}
        assert r.standin.protocol_headers == [["graphql-ws"]]


def test_hasuras_close_code_and_reason_reach_the_client(relayed: Start) -> None:
    bad = {"type": "connection_init", "payload": {"headers": {"x-hasura-admin-secret": "wrong"}}}
    with relayed() as r, connect(ws(r.gate) + "/v1/graphql", subprotocols=[TRANSPORT_WS]) as socket:
        socket.send(json.dumps(bad))
        with pytest.raises(ConnectionClosed) as closed:
            socket.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4403, "Forbidden")


def test_a_subscription_outlives_the_telemetry_sockets_idle_limit(relayed: Start) -> None:
    with relayed(websocket_idle_s=0.5) as r:
        with connect(ws(r.gate) + "/_telemetry/v1/ws") as telemetry, pytest.raises(ConnectionClosed) as closed:
            telemetry.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        with connect(ws(r.gate) + "/v1/graphql", subprotocols=[TRANSPORT_WS]) as socket:
            socket.send(json.dumps(INIT))
            assert receive(socket) == {"type": "connection_ack"}
            time.sleep(1.5)  # silent for three idle limits: the relayed socket has none
            socket.send(json.dumps({"type": "ping"}))
            assert receive(socket) == {"type": "pong"}


def test_a_path_hasura_serves_no_websocket_on_is_404_and_hasura_down_is_502(relayed: Start) -> None:
    with relayed() as r, pytest.raises(InvalidStatus) as refused:
        connect(ws(r.gate) + "/v1/metadata")
    assert refused.value.response.status_code == 404
    with relayed(hasura_url="http://127.0.0.1:1") as r, pytest.raises(InvalidStatus) as down:
        connect(ws(r.gate) + "/v1/graphql", subprotocols=[TRANSPORT_WS])
    assert down.value.response.status_code == 502
    assert down.value.response.body == b'{"error": "hasura is unreachable"}'


@pytest.mark.parametrize(
    ("code", "sent"),
    [(1000, 1000), (4400, 4400), (4429, 4429), (3000, 3000), (1005, 1001), (1006, 1001), (1015, 1001), (2000, 1001)],
)
def test_only_codes_a_close_frame_may_carry_are_sent(code: int, sent: int) -> None:
    assert sendable(code, 1001) == sent

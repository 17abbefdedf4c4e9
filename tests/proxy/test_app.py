"""HasuraProxy at the ASGI level: what it refuses before relaying, and that nothing it does is a 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.types import Message

from console_proxy.core.metrics import Metrics
from console_proxy.core.settings import Settings
from console_proxy.proxy.app import HasuraProxy


async def call(proxy: HasuraProxy, scope: dict[str, Any]) -> list[Message]:
    sent: list[Message] = []
    incoming: list[Message] = [{"type": "http.request", "body": b""}, {"type": "http.disconnect"}]

    async def receive() -> Message:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    async with proxy.running():
        await proxy(scope, receive, send)
    return sent


def scope(host: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "path": "/v1/version",
        "raw_path": b"/v1/version",
        "query_string": b"",
        "headers": [(b"host", host)],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8080),
        "scheme": "http",
    }


def record(relayed: list[httpx.Request], request: httpx.Request, status: int) -> httpx.Response:
    relayed.append(request)
    return httpx.Response(status)


def proxy(transport: httpx.AsyncBaseTransport) -> HasuraProxy:
    return HasuraProxy(
        Settings(hasura_url="http://hasura:8080"), metrics=Metrics(), enabled=lambda: True, transport=transport
    )


@pytest.mark.anyio
@pytest.mark.parametrize("host", [b"localhost:80'x", b'gate"', b"gate:8x", b"a b"])
async def test_a_host_that_could_not_be_written_into_a_script_is_refused(host: bytes) -> None:
    relayed: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda request: record(relayed, request, 200))
    sent = await call(proxy(transport), scope(host))
    assert sent[0]["status"] == 400
    assert sent[1]["body"] == b'{"error": "invalid host header"}'
    assert relayed == []


@pytest.mark.anyio
async def test_a_failure_nobody_raised_on_purpose_is_a_502_never_a_500() -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("a bug")

    sent = await call(proxy(httpx.MockTransport(broken)), scope(b"gate:8080"))
    assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [502]
    assert sent[-1]["body"] == b'{"error": "bad gateway"}'


@pytest.mark.anyio
async def test_the_request_goes_to_hasura_as_the_client_wrote_it() -> None:
    relayed: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda request: record(relayed, request, 204))
    request = {**scope(b"gate:8080"), "path": "/v1/a b", "raw_path": b"/v1/a%20b", "query_string": b"x=%2F&y=1"}
    sent = await call(proxy(transport), request)
    assert sent[0]["status"] == 204
    assert str(relayed[0].url) == "http://hasura:8080/v1/a%20b?x=%2F&y=1"

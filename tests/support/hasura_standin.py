"""A stand-in for the Hasura GraphQL Engine server, for the reverse-proxy tests: no Hasura server can be installed
here (docs/dropin.md says why), so this one is written from the shapes of the real one (server/src-lib/Hasura/Server/
App.hs and its neighbours, read in hasura/graphql-engine):

- `GET /` redirects to `console` (a relative Location); `GET /console` and below render the console page of the
  current era (support.standin_console); `/console/assets/...` serves the assets, every `.gz` file with
  `Content-Encoding: gzip` whatever the request's Accept-Encoding, with the MIME type of its name without `.gz`;
- `POST /v1/graphql` checks `X-Hasura-Admin-Secret` and answers gzipped when the client accepts it;
- WebSocket on `/v1/graphql` and `/v1alpha1/graphql` picks its protocol by Hasura's one-header rule (a
  `Sec-WebSocket-Protocol` of exactly `graphql-transport-ws` selects graphql-ws, anything else the Apollo protocol),
  checks the admin secret of `connection_init` (graphql-ws closes with 4403 when it is wrong) and serves one
  subscription, `standin_ticks`, of three ticks;
- `POST /v1/metadata` (`get_catalog_state`, `export_metadata`), `GET /v1/version`, `GET /healthz`;
- for the relay's own tests: `/standin/echo` (the request's headers back, two Set-Cookie, hop-by-hop headers that
  must not pass), `/standin/stream` (a large body, optionally held after its first chunk until the test lets it
  go), `/standin/upload` (counts a streamed request body), `/standin/slow` and `/standin/broken`.

`serve_standin()` runs it under a real uvicorn on a loopback port, in a thread; `StandIn` is changed between
requests (its era, whether its page says telemetry is on).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gzip
import hashlib
import json
import mimetypes
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from support import standin_console
from support.servers import uvicorn_server

SERVER_UUID = "6a9e7d1c-3b5f-4e2a-9c8d-0f1e2d3c4b5a"
VERSION = "v2.40.0"
CHUNK = 64 * 1024
TICKS = 3


@dataclasses.dataclass
class StandIn:
    """What the stand-in serves; change the fields between requests."""

    era: str = "v2"
    enable_telemetry: bool = True
    # /standin/stream: chunks produced so far, and the gate a held stream waits at after its first chunk.
    produced: int = 0
    release: threading.Event = dataclasses.field(default_factory=threading.Event)
    # Subprotocol headers as the WebSocket handshakes carried them (Hasura's one-header rule reads these).
    protocol_headers: list[list[str]] = dataclasses.field(default_factory=list)

    def asset(self, path: str) -> bytes | None:
        """An asset by its path below `/console/assets/`; the CDN's versioned folder is the server's `versioned/`."""
        cdn = standin_console.CDN_VERSION + "/"
        if path.startswith(cdn):
            path = "versioned/" + path.removeprefix(cdn)
        return standin_console.assets(self.era).get(path)


@dataclasses.dataclass
class Relayed:
    """A stand-in and a gate relaying to it (tests/proxy/conftest.py's `relayed` fixture makes them)."""

    standin: StandIn
    hasura: str
    gate: str
    app: Starlette


Start = Callable[..., contextlib.AbstractContextManager[Relayed]]


def _gzipped_if_accepted(request: Request, body: bytes, media_type: str) -> Response:
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(gzip.compress(body, mtime=0), media_type=media_type, headers={"content-encoding": "gzip"})
    return Response(body, media_type=media_type)


def app(standin: StandIn) -> Starlette:
    async def root(request: Request) -> Response:
        return RedirectResponse("console", status_code=302)

    async def console(request: Request) -> Response:
        path = request.path_params.get("path", "")
        if path.startswith("assets/"):
            return _asset(path.removeprefix("assets/"))
        body = standin_console.page(standin.era, enable_telemetry=standin.enable_telemetry)
        return Response(body, media_type="text/html; charset=utf-8")

    def _asset(path: str) -> Response:
        data = standin.asset(path)
        if data is None:
            return PlainTextResponse("not found", status_code=404)
        # The CDN's answers allow any origin: the 2.18+ bundles are module scripts, fetched with CORS.
        headers = {"access-control-allow-origin": "*", "etag": '"standin"'}
        if path.endswith(".gz"):
            media_type = mimetypes.guess_type(path.removesuffix(".gz"))[0] or "application/octet-stream"
            return Response(data, media_type=media_type, headers={**headers, "content-encoding": "gzip"})
        return Response(data, media_type=mimetypes.guess_type(path)[0] or "application/octet-stream", headers=headers)

    async def graphql(request: Request) -> Response:
        if request.headers.get("x-hasura-admin-secret") != standin_console.ADMIN_SECRET:
            error = {"extensions": {"path": "$", "code": "access-denied"}, "message": "invalid x-hasura-admin-secret"}
            return JSONResponse({"errors": [error]}, status_code=200)
        query = (await request.json()).get("query", "")
        data: dict[str, Any] = {"standin_now": "2026-12-01T08:15:02Z"} if "standin_now" in query else {}
        return _gzipped_if_accepted(request, json.dumps({"data": data}).encode(), "application/json")

    async def metadata(request: Request) -> Response:
        if request.headers.get("x-hasura-admin-secret") != standin_console.ADMIN_SECRET:
            return JSONResponse({"path": "$", "error": "invalid x-hasura-admin-secret", "code": "access-denied"}, 400)
        kind = (await request.json()).get("type")
        if kind == "get_catalog_state":
            return JSONResponse({"id": SERVER_UUID, "cli_state": {}, "console_state": {}})
        if kind == "export_metadata":
            return JSONResponse({"version": 3, "sources": []})
        return JSONResponse({"path": "$.type", "error": "unknown metadata command", "code": "parse-failed"}, 400)

    async def version(request: Request) -> Response:
        return JSONResponse({"version": VERSION, "server_type": "ce"})

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("OK")

    async def echo(request: Request) -> Response:
        body = await request.body()
        seen = {"method": request.method, "headers": [[k, v] for k, v in request.headers.items()], "body": len(body)}
        response = JSONResponse(seen)
        response.headers.append("set-cookie", "standin_a=1; Path=/; HttpOnly")
        response.headers.append("set-cookie", "standin_b=2; Path=/console")
        response.headers["x-standin-end"] = "kept"
        response.headers["x-standin-named"] = "dropped"
        response.headers["connection"] = "x-standin-named"
        response.headers["keep-alive"] = "timeout=5"
        response.headers["proxy-authenticate"] = 'Basic realm="standin"'
        response.headers["location"] = "../console/settings"
        return response

    async def stream(request: Request) -> Response:
        size = int(request.query_params.get("bytes", str(8 * CHUNK)))
        hold = request.query_params.get("hold") == "1"
        standin.produced = 0

        async def chunks() -> AsyncIterator[bytes]:
            sent = 0
            while sent < size:
                n = min(CHUNK, size - sent)
                standin.produced += 1
                yield b"x" * n
                sent += n
                if hold and standin.produced == 1:
                    await asyncio.to_thread(standin.release.wait, 30)

        headers = {"content-length": str(size)} if request.query_params.get("length") == "1" else None
        return StreamingResponse(chunks(), media_type="application/octet-stream", headers=headers)

    async def upload(request: Request) -> Response:
        digest = hashlib.sha256()
        size = 0
        async for chunk in request.stream():
            digest.update(chunk)
            size += len(chunk)
        return JSONResponse({"bytes": size, "sha256": digest.hexdigest()})

    async def slow(request: Request) -> Response:
        await asyncio.sleep(float(request.query_params.get("s", "3")))
        return PlainTextResponse("late")

    async def broken(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"0123456789"
            raise RuntimeError("the stand-in breaks off on purpose")

        return StreamingResponse(chunks(), media_type="application/octet-stream", headers={"content-length": "1000"})

    async def subscriptions(websocket: WebSocket) -> None:
        offered = [v.decode() for k, v in websocket.scope["headers"] if k == b"sec-websocket-protocol"]
        standin.protocol_headers.append(offered)
        if offered == ["graphql-transport-ws"]:
            await _graphql_ws(websocket)
        else:
            await _apollo(websocket, "graphql-ws" if "graphql-ws" in websocket.scope["subprotocols"] else None)

    return Starlette(
        routes=[
            Route("/", root),
            Route("/console", console),
            Route("/console/{path:path}", console),
            Route("/v1/graphql", graphql, methods=["POST"]),
            Route("/v1/metadata", metadata, methods=["POST"]),
            Route("/v1/version", version),
            Route("/healthz", healthz),
            Route("/standin/echo", echo, methods=["GET", "POST"]),
            Route("/standin/stream", stream),
            Route("/standin/upload", upload, methods=["POST"]),
            Route("/standin/slow", slow),
            Route("/standin/broken", broken),
            WebSocketRoute("/v1/graphql", subscriptions),
            WebSocketRoute("/v1alpha1/graphql", subscriptions),
        ]
    )


def _authorized(init: dict[str, Any]) -> bool:
    headers = (init.get("payload") or {}).get("headers") or {}
    return bool(headers.get("x-hasura-admin-secret") == standin_console.ADMIN_SECRET)


async def _graphql_ws(websocket: WebSocket) -> None:
    await websocket.accept(subprotocol="graphql-transport-ws")
    try:
        init = json.loads(await websocket.receive_text())
        if init.get("type") != "connection_init" or not _authorized(init):
            await websocket.close(4403, "Forbidden")
            return
        await websocket.send_text(json.dumps({"type": "connection_ack"}))
        while True:
            message = json.loads(await websocket.receive_text())
            if message.get("type") == "ping":
                await websocket.send_text(json.dumps({"type": "pong"}))
            elif message.get("type") == "subscribe":
                for tick in range(1, TICKS + 1):
                    payload = {"data": {"standin_ticks": tick}}
                    await websocket.send_text(json.dumps({"id": message["id"], "type": "next", "payload": payload}))
                await websocket.send_text(json.dumps({"id": message["id"], "type": "complete"}))
    except WebSocketDisconnect:
        return


async def _apollo(websocket: WebSocket, subprotocol: str | None) -> None:
    await websocket.accept(subprotocol=subprotocol)
    try:
        init = json.loads(await websocket.receive_text())
        if init.get("type") != "connection_init" or not _authorized(init):
            await websocket.send_text(json.dumps({"type": "connection_error", "payload": "invalid admin secret"}))
            await websocket.close(1000)
            return
        await websocket.send_text(json.dumps({"type": "connection_ack"}))
        await websocket.send_text(json.dumps({"type": "ka"}))
        while True:
            message = json.loads(await websocket.receive_text())
            if message.get("type") == "start":
                for tick in range(1, TICKS + 1):
                    payload = {"data": {"standin_ticks": tick}}
                    await websocket.send_text(json.dumps({"id": message["id"], "type": "data", "payload": payload}))
                await websocket.send_text(json.dumps({"id": message["id"], "type": "complete"}))
            elif message.get("type") == "connection_terminate":
                await websocket.close(1000)
                return
    except WebSocketDisconnect:
        return


@contextlib.contextmanager
def serve_standin(
    standin: StandIn | None = None, *, ssl_certfile: str | None = None, ssl_keyfile: str | None = None
) -> Iterator[tuple[StandIn, str]]:
    """Serve a StandIn under uvicorn on a loopback port; yield it and its base URL (with ssl_certfile and
    ssl_keyfile, over HTTPS: the CDN's)."""
    standin = standin or StandIn()
    try:
        with uvicorn_server(app(standin), ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile) as base:
            yield standin, base
    finally:
        standin.release.set()  # a held stream must not keep the server from stopping

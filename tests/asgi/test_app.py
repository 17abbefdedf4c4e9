from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from console_proxy.asgi.app import create_app
from console_proxy.asgi.middleware import TelemetryMiddleware
from console_proxy.asgi.runtime import TelemetryRuntime
from console_proxy.core.settings import Settings
from console_proxy.delivery.sink import OutboundEvent

from support.servers import uvicorn_server

SERVER_UUID = "11111111-2222-4333-8444-555555555555"
RULES_V1 = "version: 1\nprefixes: [/console]\nroutes:\n  - /a/{X}\n"
RULES_V2 = "version: 1\nprefixes: [/console]\nroutes:\n  - /a/{X}\n  - /b/{Y}\n"


@pytest.fixture
def console_dir(tmp_path: Path) -> Path:
    static = tmp_path / "static"
    (static / "assets").mkdir(parents=True)
    (static / "index.html").write_text("<!doctype html><title>test console</title>")
    (static / "assets" / "app.js").write_text("console.log(1)")
    return static


@pytest.fixture
def base(tmp_path: Path, console_dir: Path) -> Iterator[str]:
    settings = Settings(
        state_dir=tmp_path / "state", server_uuid=SERVER_UUID, static=console_dir, prefix="/hasura/console"
    )
    with uvicorn_server(create_app(settings, env={})) as url:
        yield url


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        ("/hasura/console/", 200, "<!doctype html><title>test console</title>"),
        ("/hasura/console/index.html", 200, "<!doctype html><title>test console</title>"),
        ("/hasura/console/assets/app.js", 200, "console.log(1)"),
        # The single-page app's own routes get index.html ...
        ("/hasura/console/data/default/schema/public", 200, "<!doctype html><title>test console</title>"),
        ("/hasura/console/assets", 200, "<!doctype html><title>test console</title>"),
        # ... but a missing asset is a real 404, and nothing outside the prefix is served.
        ("/hasura/console/assets/missing.js", 404, "Not Found"),
        ("/hasura/console/logo.png", 404, "Not Found"),
        ("/elsewhere", 404, "Not Found"),
        ("/healthz", 200, '{"status":"live"}'),
        ("/readyz", 200, '{"status":"ready"}'),
    ],
)
def test_routes(base: str, path: str, status: int, body: str) -> None:
    response = httpx.get(base + path)
    assert (response.status_code, response.text) == (status, body)


@pytest.mark.parametrize(("path", "location"), [("/", "/hasura/console/"), ("/hasura/console", "/hasura/console/")])
def test_redirects_to_the_console(base: str, path: str, location: str) -> None:
    response = httpx.get(base + path)
    assert (response.status_code, response.headers["location"].removeprefix(base)) == (307, location)


def test_the_middleware_is_in_front(base: str) -> None:
    response = httpx.post(base + "/_telemetry/v1/events", json=[{"type": "A/B", "route": "/hasura/console/data/x"}])
    assert (response.status_code, response.json()) == (202, {"accepted": 1, "dropped": 0})
    assert httpx.get(base + "/_telemetry/v1/recent").json()[0]["url"] == "/data/SOURCE"


class UnreadySink:
    async def start(self) -> None:
        pass

    async def put(self, topic: str, events: Sequence[OutboundEvent]) -> None:
        pass

    def ready(self) -> bool:
        return False

    async def aclose(self, *, drain: bool = True) -> None:
        pass


def test_readyz_is_503_while_the_sink_cannot_take_a_batch(tmp_path: Path) -> None:
    app = create_app(Settings(state_dir=tmp_path / "state"), sink=UnreadySink(), env={})
    with uvicorn_server(app) as url:
        response = httpx.get(url + "/readyz")
        assert (response.status_code, response.json()) == (503, {"status": "not ready"})
        assert httpx.get(url + "/healthz").status_code == 200


def test_readyz_is_200_when_telemetry_is_off(tmp_path: Path) -> None:
    with uvicorn_server(create_app(Settings(state_dir=tmp_path / "state", enable_telemetry=False), env={})) as url:
        assert httpx.get(url + "/readyz").status_code == 200
    assert not (tmp_path / "state").exists()


def wait_until_url(base: str, route: str, expected: str) -> None:
    deadline = time.monotonic() + 10
    while True:
        assert httpx.post(base + "/_telemetry/v1/events", json=[{"type": "A/B", "route": route}]).status_code == 202
        if httpx.get(base + "/_telemetry/v1/recent").json()[-1]["url"] == expected:
            return
        assert time.monotonic() < deadline, f"{route} never became {expected}"
        time.sleep(0.05)


def test_rules_reload_when_the_file_changes_and_a_bad_file_keeps_the_old_ones(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES_V1)
    settings = Settings(state_dir=tmp_path / "state", rules=rules)
    runtime = TelemetryRuntime(settings, env={}, rules_poll_s=0.05)

    async def nothing(scope: object, receive: object, send: object) -> None:
        raise AssertionError("not reached")

    with (
        caplog.at_level(logging.INFO, "console_proxy"),
        uvicorn_server(TelemetryMiddleware(nothing, runtime=runtime)) as url,
    ):
        wait_until_url(url, "/console/b/secret", "/UNKNOWN")
        rules.write_text(RULES_V2)
        wait_until_url(url, "/console/b/secret", "/b/Y")
        rules.write_text("version: 1\nroutes: [\n")
        deadline = time.monotonic() + 10
        while 'console_proxy_rules_reloads_total{outcome="refused"} 1.0' not in runtime.metrics.render().decode():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        wait_until_url(url, "/console/b/secret", "/b/Y")
        assert 'console_proxy_rules_reloads_total{outcome="ok"} 1.0' in runtime.metrics.render().decode()
    assert "rules reloaded (file changed)" in caplog.text
    assert f"rules reload (file changed) refused, keeping the previous rules:\n{rules}:3:1: " in caplog.text


def test_a_server_without_websocket_is_noticed_at_the_first_handshake(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # uvicorn with ws="none" passes a WebSocket handshake on as a plain HTTP request, as it does when
    # no WebSocket library is installed: the middleware refuses it, logs one line and stays not ready.
    settings = Settings(state_dir=tmp_path / "state", server_uuid=SERVER_UUID)
    caplog.set_level(logging.ERROR, logger="console_proxy")
    handshake = {
        "connection": "Upgrade",
        "upgrade": "websocket",
        "sec-websocket-version": "13",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    with uvicorn_server(create_app(settings, env={}), ws="none") as base:
        assert httpx.get(base + "/readyz").status_code == 200
        answers = [httpx.get(base + "/_telemetry/v1/ws", headers=handshake) for _ in range(2)]
        assert [(a.status_code, a.json()) for a in answers] == [
            (501, {"error": "this server cannot serve WebSocket"})
        ] * 2
        assert httpx.get(base + "/readyz").status_code == 503
        # A plain GET of the path (no upgrade asked) is none of this: the app answers it as before.
        assert httpx.get(base + "/_telemetry/v1/ws").status_code == 404
        metrics = httpx.get(base + "/metrics").text
    assert 'console_proxy_batches_rejected_total{reason="websocket_not_served",source="console"} 2.0' in metrics
    assert [r.getMessage() for r in caplog.records if "cannot serve WebSocket" in r.getMessage()] == [
        "the server in front of console-proxy cannot serve WebSocket (under uvicorn: install 'websockets' or"
        " 'wsproto'), so the console's events on /_telemetry/v1/ws are lost and readiness reports not ready"
    ]

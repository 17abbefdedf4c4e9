"""Only the console may write, and fairly: real Chromium pages against a real `console-proxy serve`.

A page served from another origin (another port on the same machine) tries every way a page can send
to the proxy; none is kept and each is counted. A flood from one client beside the demo console gets 429
while every event of the console's own session is kept.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext

from console_proxy.rules.route_rules import RouteRules

from support.browser import (
    SERVER_UUID,
    PageLog,
    assert_anonymous,
    click_through,
    close_holding_events,
    expected_arrivals,
    kept_events,
    wait_for,
)
from support.collector import read_metrics
from support.servers import serving

pytestmark = pytest.mark.browser

EVENTS = "/_telemetry/v1/events"
ATTEMPTS = ["sendBeacon", "no-cors fetch", "CORS fetch", "WebSocket", "text/plain form"]

# The foreign page: each way a page can write to the proxy, reported back in window.__done.
FOREIGN_PAGE = """<!doctype html>
<html><body>
<iframe name="sink" style="display:none"></iframe>
<form id="form" method="post" enctype="text/plain" target="sink" action="{proxy}/_telemetry/v1/events">
  <input name='[{{"type":"Data/SET_TABLE","route":"/console/data","pad":"' value='x"}}]'>
</form>
<script>
const proxy = "{proxy}";
const body = JSON.stringify([{{type: "Data/SET_TABLE", route: "/console/data"}}]);
window.__results = {{}};
(async () => {{
  const r = window.__results;
  r.sendBeacon = navigator.sendBeacon(proxy + "/_telemetry/v1/events", body);
  try {{
    await fetch(proxy + "/_telemetry/v1/events", {{method: "POST", mode: "no-cors", body,
      headers: {{"content-type": "text/plain"}}}});
    r.noCors = "sent";
  }} catch (e) {{ r.noCors = "failed"; }}
  try {{
    const res = await fetch(proxy + "/_telemetry/v1/events", {{method: "POST", mode: "cors", body,
      headers: {{"content-type": "application/json"}}}});
    r.cors = res.status;
  }} catch (e) {{ r.cors = "blocked"; }}
  r.ws = await new Promise((resolve) => {{
    const ws = new WebSocket(proxy.replace("http", "ws") + "/_telemetry/v1/ws");
    ws.onopen = () => {{ ws.send(body); }};
    ws.onmessage = (m) => resolve("acked: " + m.data);
    ws.onerror = () => resolve("refused");
  }});
  document.getElementById("form").submit();
  r.form = "submitted";
  window.__done = true;
}})();
</script>
</body></html>
"""


class _Page(BaseHTTPRequestHandler):
    html = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(self.html)))
        self.end_headers()
        self.wfile.write(self.html)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def foreign_site(proxy: str) -> Iterator[str]:
    handler = type("ForeignPage", (_Page,), {"html": FOREIGN_PAGE.format(proxy=proxy).encode()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def refused(base: str, reason: str) -> float:
    metrics = read_metrics(httpx.get(base + "/metrics").text)
    return metrics.get(f"console_proxy_batches_rejected_total{{reason={reason},source=console}}", 0.0)


def test_a_page_on_another_origin_cannot_write_by_any_means(
    context: tuple[BrowserContext, PageLog],
    tmp_path: Path,
) -> None:
    ctx, _ = context
    state = tmp_path / "state"
    with serving(tmp_path, "--state-dir", str(state), "--server-uuid", SERVER_UUID) as proxy:
        for url in foreign_site(proxy.base):
            page = ctx.new_page()
            page.goto(url)
            page.wait_for_function("window.__done === true", timeout=20_000)
            results = page.evaluate("window.__results")
            # The form's post lands in the iframe; give the five refusals time to be counted.
            deadline = time.monotonic() + 20
            while refused(proxy.base, "foreign_origin") < len(ATTEMPTS) and time.monotonic() < deadline:
                time.sleep(0.1)
            count = refused(proxy.base, "foreign_origin")
            page.close()
        kept = kept_events(state / "events.jsonl")
    print(f"cross-origin attempts {ATTEMPTS}: page saw {results}; refused and counted: {count:g}; kept: {len(kept)}")
    assert results["ws"] == "refused"
    assert results["cors"] == "blocked"  # its preflight got 403, so the POST was never sent
    assert count == len(ATTEMPTS)  # beacon, no-cors fetch, the preflight, the handshake, the form
    assert kept == []


def test_a_flood_beside_the_console_gets_429_and_the_console_keeps_everything(
    context: tuple[BrowserContext, PageLog],
    tmp_path: Path,
    default_rules: RouteRules,
) -> None:
    ctx, log = context
    canary = f"canary-{uuid.uuid4().hex[:12]}"
    state = tmp_path / "state"
    flood_codes: list[int] = []
    stop = threading.Event()

    def flood(base: str) -> None:
        batch = [{"type": "Flood/EVENT", "route": "/console/data"}] * 100
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                flood_codes.append(client.post(base + EVENTS, json=batch).status_code)

    with serving(tmp_path, "--state-dir", str(state), "--server-uuid", SERVER_UUID) as proxy:
        flooder = threading.Thread(target=flood, args=(proxy.base,), daemon=True)
        flooder.start()
        try:
            page = ctx.new_page()
            click_through(page, proxy.base, canary)
            held = close_holding_events(page, log, canary)
            sent = log.sent_events() + held
            expected = expected_arrivals(sent, default_rules)

            def console_kept() -> list[dict[str, Any]]:
                return [e for e in kept_events(state / "events.jsonl") if e["event_type"] != "Flood/EVENT"]

            kept = wait_for(sum(expected.values()), console_kept)
        finally:
            stop.set()
            flooder.join()
    flooded = [e for e in kept_events(state / "events.jsonl") if e["event_type"] == "Flood/EVENT"]
    print(
        f"flood: {len(flood_codes)} batches of 100, {flood_codes.count(429)} answered 429, "
        f"{len(flooded)} flood events kept; console: {len(sent)} sent, {len(kept)} kept"
    )
    assert sorted((e["event_type"], e["url"]) for e in kept) == sorted(expected.elements())
    assert set(log.events_responses) <= {202}
    assert_anonymous(kept, canary)
    assert flood_codes.count(429) > 0
    assert set(flood_codes) <= {202, 429}

"""The browser client and the demo console in a real Chromium, against a real `console-proxy serve`.

A person's session is replayed: pages with awkward identifiers in their routes, forms whose values
(canaries) end up in action payloads and in the query string, a full page load in the middle, and
the page closed at the end so that the client's pagehide beacon carries the rest. Every call the
page makes to the telemetry endpoints is recorded from inside the page (sendBeacon is invisible to
the network log once a page is closing), and what the proxy kept or forwarded is compared with it.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request, Response, expect, sync_playwright
from servers import serving

from console_proxy.resources import default_static_dir
from console_proxy.rules import RouteRules

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "test-output"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVER_UUID = "6f1c2b3a-9d4e-4f5a-8b6c-7d8e9f0a1b2c"
EVENTS_PATH = "/_telemetry/v1/events"
STATUS_PATH = "/_telemetry/v1/status"
ARRIVAL_TIMEOUT_S = 20.0

# Every name the session touches, raw and percent-encoded: none may be kept or forwarded.
IDENTIFIERS = [
    "prod db", "prod%20db", "prod",
    "usuários", "usu%C3%A1rios", "usu",
    "sales/eu", "sales%2Feu", "sales",
    "invoices 2026", "invoices%202026", "invoices",
    "Kunden", "dbo",
    "notify_usuário", "notify_usu%C3%A1rio", "notify",
    "créerCommande", "cr%C3%A9erCommande", "commande",
    "payments/v2", "payments%2Fv2", "payments",
    "customer", "filter", "sort",
]

# Records, from inside the page, every fetch and sendBeacon aimed at the telemetry endpoints, two
# ways: a binding (which survives page.close but not a navigation) and sessionStorage (which
# survives a navigation in the tab but not page.close). Each call has an id; the union is complete.
RECORDER = """
(() => {
  const record = (kind, url, body) => {
    try {
      if (!String(url).includes('/_telemetry/')) return;
      const call = [crypto.randomUUID(), kind, String(url), typeof body === 'string' ? body : null];
      const log = JSON.parse(sessionStorage.getItem('__telemetryCalls') || '[]');
      log.push(call);
      sessionStorage.setItem('__telemetryCalls', JSON.stringify(log));
      window.__telemetryCall(...call);
    } catch (e) {}
  };
  const beacon = navigator.sendBeacon.bind(navigator);
  navigator.sendBeacon = (url, body) => { record('beacon', url, body); return beacon(url, body); };
  const realFetch = window.fetch.bind(window);
  window.fetch = (url, init) => { record('fetch', url, init && init.body); return realFetch(url, init); };
})();
"""


@dataclass
class PageLog:
    """What the page sent to the proxy, as the page itself made the calls."""

    by_id: dict[str, tuple[str, str, str | None]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    events_responses: list[int] = field(default_factory=list)

    def record(self, call_id: str, kind: str, url: str, body: str | None) -> None:
        self.by_id[call_id] = (kind, url, body)

    def read_storage(self, page: Page) -> None:
        """Take the calls kept in the tab's sessionStorage (call before the page is closed)."""
        for call_id, kind, url, body in page.evaluate("JSON.parse(sessionStorage.getItem('__telemetryCalls') || '[]')"):
            self.record(call_id, kind, url, body)

    @property
    def calls(self) -> list[tuple[str, str, str | None]]:
        return list(self.by_id.values())

    def sent_events(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        for _, url, body in self.calls:
            if url.endswith(EVENTS_PATH):
                assert body is not None
                events.extend(json.loads(body)["events"])
        return events

    def calls_to(self, path: str) -> list[str]:
        return [kind for kind, url, _ in self.calls if url.endswith(path)]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # No skip: with CI=true (and without) a missing browser or an unbuilt console is a failure.
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium", pytrace=False)
    if not (default_static_dir() / "dist" / "main.js").exists():
        pytest.fail("the demo console is not built: run `make console`", pytrace=False)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[tuple[BrowserContext, PageLog]]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, locale="pt-BR")
    log = PageLog()
    ctx.expose_binding("__telemetryCall", lambda source, *call: log.record(*call))
    ctx.add_init_script(RECORDER)
    ctx.on("request", lambda request: _on_request(log, request))
    ctx.on("response", lambda response: _on_response(log, response))
    try:
        yield ctx, log
    finally:
        ctx.close()


def _on_request(log: PageLog, request: Request) -> None:
    log.requests.append(request.url)


def _on_response(log: PageLog, response: Response) -> None:
    if response.url.endswith(EVENTS_PATH):
        log.events_responses.append(response.status)


def _link(page: Page, name: str) -> None:
    page.get_by_role("link", name=name, exact=True).first.click()


def _heading(page: Page, text: str) -> None:
    expect(page.get_by_role("heading", level=1)).to_contain_text(text)


def click_through(page: Page, base: str, canary: str, *, screenshots: bool = False) -> None:
    """A person's session in the demo console; every form value and query string carries `canary`."""
    page.goto(f"{base}/console/")
    _heading(page, "Data Manager")
    _link(page, "prod db")
    _heading(page, "prod db")
    _link(page, "sales/eu")
    _heading(page, "sales/eu")
    _link(page, "invoices 2026")
    expect(page.get_by_role("cell", name="Müller GmbH")).to_be_visible()
    if screenshots:
        OUTPUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUTPUT / "demo-console.png"))
    page.get_by_label("column", exact=True).select_option("customer")
    page.get_by_label("value", exact=True).fill(canary)
    page.get_by_role("button", name="Run query").click()
    page.wait_for_url(re.compile(r"\?filter="))
    assert canary in page.url

    _link(page, "Modify")
    page.get_by_label("new column name").fill(canary)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Column saved")).to_be_visible()
    _link(page, "usuários")
    expect(page.get_by_role("cell", name="Ana Luísa")).to_be_visible()

    _link(page, "SQL")
    page.get_by_label("sql").fill(f"SELECT '{canary}' FROM \"sales/eu\".\"invoices 2026\";")
    page.get_by_role("button", name="Run!").click()
    expect(page.get_by_text("SQL executed")).to_be_visible()

    _link(page, "Events")
    _link(page, "notify_usuário")
    _link(page, "Logs")
    page.get_by_label("event id").fill(canary)
    page.get_by_role("button", name="Redeliver").click()
    expect(page.get_by_text("Event redelivered")).to_be_visible()

    _link(page, "Actions")
    _link(page, "créerCommande")
    page.get_by_label("action definition").fill(f"type Mutation {{ {canary}: String }}")
    page.get_by_role("button", name="Save action").click()
    expect(page.get_by_text("Action saved")).to_be_visible()

    _link(page, "Remote Schemas")
    _link(page, "payments/v2")
    _link(page, "Modify")
    page.get_by_label("authorization header").fill(f"Bearer {canary}")
    page.get_by_role("button", name="Save headers").click()
    expect(page.get_by_text("Headers saved")).to_be_visible()

    _link(page, "Settings")
    _link(page, "Admin Secrets")
    page.get_by_label("admin secret").fill(canary)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Admin secret saved")).to_be_visible()

    # A full page load (a deep link with a row value in the query and the fragment): the first
    # document's pagehide beacons what it still holds.
    page.goto(f"{base}/console/data/manage/schema/dbo/tables/Kunden/browse?filter=id;$eq;{canary}#{canary}")
    expect(page.get_by_role("button", name="Run query")).to_be_visible()

    page.get_by_role("link", name="What this console reports").first.click()
    _heading(page, "What this console reports")
    expect(page.get_by_test_id("telemetry-enabled")).not_to_have_text("…")


def kept_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [event for line in lines if line.strip() for event in json.loads(line)["data"]]


def wait_for(count: int, events: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    deadline = time.monotonic() + ARRIVAL_TIMEOUT_S
    while True:
        got = events()
        if len(got) >= count or time.monotonic() > deadline:
            # Anything more would show as a mismatch, so give stragglers a moment to land.
            time.sleep(0.3)
            return events()
        time.sleep(0.05)


def expected_arrivals(sent: list[dict[str, Any]], rules: RouteRules) -> Counter[tuple[str, str]]:
    """What the proxy must keep of what the page sent: the rules' action and anonymized route."""
    kept: Counter[tuple[str, str]] = Counter()
    for event in sent:
        action = rules.action(event["type"])
        if action is not None:
            kept[(action, rules.anonymize(event["route"]))] += 1
    return kept


def assert_clean(sent: list[dict[str, Any]], canary: str) -> None:
    """The page itself sends only {type, route}, without query, fragment or payload."""
    assert sent
    for event in sent:
        assert sorted(event) == ["route", "type"]
        assert "?" not in event["route"] and "#" not in event["route"]
    assert canary not in json.dumps(sent, ensure_ascii=False)


def assert_anonymous(kept: list[dict[str, Any]], canary: str) -> None:
    text = json.dumps(kept, ensure_ascii=False).lower()
    assert canary.lower() not in text
    leaked = [name for name in IDENTIFIERS if name.lower() in text]
    assert leaked == []
    for event in kept:
        assert event["server_uuid"] == SERVER_UUID
        assert event["cli_uuid"] is None
        assert event["console_mode"] == "server"
        assert event["data"] is None
        assert uuid.UUID(event["event_id"]).version == 4
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["timestamp"])


# Pages of the session and the routes the proxy must turn them into.
ANONYMIZED_ROUTES = {
    "/data",
    "/data/SOURCE",
    "/data/SOURCE/schema/SCHEMA",
    "/data/SOURCE/schema/SCHEMA/tables/TABLE/browse",
    "/data/SOURCE/schema/SCHEMA/tables/TABLE/modify",
    "/data/sql",
    "/events/data/manage",
    "/events/data/EVENT_TRIGGER/modify",
    "/events/data/EVENT_TRIGGER/logs",
    "/actions/manage/actions",
    "/actions/manage/ACTION/modify",
    "/remote-schemas/manage/schemas",
    "/remote-schemas/manage/REMOTE_SCHEMA/details",
    "/remote-schemas/manage/REMOTE_SCHEMA/modify",
    "/settings/metadata-actions",
    "/settings/multiple-admin-secrets",
}


def report(name: str, sent: int, arrived: int, dropped_by_rules: int) -> None:
    OUTPUT.mkdir(exist_ok=True)
    line = {"test": name, "sent": sent, "arrived": arrived, "dropped_by_rules": dropped_by_rules}
    with open(OUTPUT / "browser-counts.jsonl", "a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")


def test_local_mode_keeps_every_event_anonymized(
    context: tuple[BrowserContext, PageLog], tmp_path: Path, default_rules: RouteRules
) -> None:
    ctx, log = context
    canary = f"canary-{uuid.uuid4().hex[:12]}"
    state = tmp_path / "state"
    with serving(tmp_path, "--state-dir", str(state), "--server-uuid", SERVER_UUID) as proxy:
        assert proxy.proc.poll() is None, proxy.output()
        page = ctx.new_page()
        click_through(page, proxy.base, canary, screenshots=True)
        expect(page.get_by_test_id("recent")).to_contain_text("/data/SOURCE/schema/SCHEMA/tables/TABLE/browse")
        expect(page.get_by_test_id("recent")).to_contain_text(SERVER_UUID)
        expect(page.get_by_test_id("telemetry-enabled")).to_have_text("on")
        page.screenshot(path=str(OUTPUT / "what-this-console-reports.png"), full_page=True)
        log.read_storage(page)
        page.close(run_before_unload=True)

        sent = log.sent_events()
        expected = expected_arrivals(sent, default_rules)
        kept = wait_for(sum(expected.values()), lambda: kept_events(state / "events.jsonl"))

    assert_clean(sent, canary)
    assert Counter((e["event_type"], e["url"]) for e in kept) == expected
    assert_anonymous(kept, canary)
    assert ANONYMIZED_ROUTES - {e["url"] for e in kept} == set()
    # Two documents whose clients asked the status once each, and the reports page that shows it;
    # events went by fetch while a page was open and by beacon on pagehide.
    assert log.calls_to(STATUS_PATH) == ["fetch", "fetch", "fetch"]
    assert "beacon" in log.calls_to(EVENTS_PATH)
    assert set(log.events_responses) <= {202}
    # The session's drop-listed bookkeeping (App/*, RNS_*) was sent and dropped, nothing else.
    dropped = Counter(e["type"] for e in sent if default_rules.action(e["type"]) is None)
    assert set(dropped) == {"App/ONGOING_REQUEST", "App/DONE_REQUEST", "RNS_SHOW_NOTIFICATION"}
    assert len(kept) == len(sent) - sum(dropped.values())
    report("local", len(sent), len(kept), sum(dropped.values()))


def test_telemetry_off_makes_the_browser_send_nothing(
    context: tuple[BrowserContext, PageLog], tmp_path: Path
) -> None:
    ctx, log = context
    canary = f"canary-{uuid.uuid4().hex[:12]}"
    state = tmp_path / "state"
    with serving(
        tmp_path, "--state-dir", str(state), "--server-uuid", SERVER_UUID, "--enable-telemetry", "false"
    ) as proxy:
        assert proxy.proc.poll() is None, proxy.output()
        page = ctx.new_page()
        click_through(page, proxy.base, canary)
        expect(page.get_by_test_id("telemetry-enabled")).to_have_text("off")
        stats = page.evaluate("window.__consoleTelemetry.stats()")
        log.read_storage(page)
        page.close(run_before_unload=True)
        # Give a beacon that should not exist every chance to land.
        time.sleep(1.0)

    assert stats["state"] == "disabled"
    assert stats["buffered"] == 0
    assert stats["sent"] == 0
    assert log.calls_to(EVENTS_PATH) == []
    assert log.calls_to(STATUS_PATH) == ["fetch", "fetch", "fetch"]
    assert [url for url in log.requests if EVENTS_PATH in url] == []
    assert log.events_responses == []
    assert kept_events(state / "events.jsonl") == []

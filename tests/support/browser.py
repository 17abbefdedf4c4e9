"""The demo console in a real Chromium: the recorder put in every page, a person's session clicked through, and the
checks of what the proxy kept against what the page sent."""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, Request, Response, expect

from console_proxy.rules.route_rules import RouteRules

from support.paths import ROOT

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
    "prod db",
    "prod%20db",
    "prod",
    "usuários",
    "usu%C3%A1rios",
    "usu",
    "sales/eu",
    "sales%2Feu",
    "sales",
    "invoices 2026",
    "invoices%202026",
    "invoices",
    "Kunden",
    "dbo",
    "notify_usuário",
    "notify_usu%C3%A1rio",
    "notify",
    "créerCommande",
    "cr%C3%A9erCommande",
    "commande",
    "payments/v2",
    "payments%2Fv2",
    "payments",
    "customer",
    "filter",
    "sort",
]

# Records, from inside the page, every fetch and sendBeacon aimed at the telemetry endpoints, in the
# tab's sessionStorage: written synchronously, it survives navigations (a pagehide included). What a
# page sends while it is being closed cannot be read back, so tests close a page holding known events.
RECORDER = """
(() => {
  const record = (kind, url, body, queued) => {
    try {
      if (!String(url).includes('/_telemetry/')) return;
      const log = JSON.parse(sessionStorage.getItem('__telemetryCalls') || '[]');
      log.push([kind, String(url), typeof body === 'string' ? body : null, queued]);
      sessionStorage.setItem('__telemetryCalls', JSON.stringify(log));
    } catch (e) {}
  };
  const beacon = navigator.sendBeacon.bind(navigator);
  navigator.sendBeacon = (url, body) => {
    const queued = beacon(url, body);
    record('beacon', url, body, queued);
    return queued;
  };
  const realFetch = window.fetch.bind(window);
  window.fetch = (url, init) => { record('fetch', url, init && init.body, null); return realFetch(url, init); };
})();
"""

# Where the page is when it closes, and how many actions it then holds (fewer than its batch size).
CLOSING_ROUTE = "/console/data/prod%20db/schema/sales%2Feu/tables/invoices%202026/modify"
HELD_ACTIONS = 5


@dataclass
class PageLog:
    """What the page sent to the proxy, as the page itself made the calls."""

    recorded: list[tuple[str, str, str | None, bool | None]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    events_responses: list[int] = field(default_factory=list)

    def read_storage(self, page: Page) -> None:
        """Take the calls recorded in the tab so far: (kind, url, body, what sendBeacon returned)."""
        calls = page.evaluate("JSON.parse(sessionStorage.getItem('__telemetryCalls') || '[]')")
        self.recorded = [(kind, url, body, queued) for kind, url, body, queued in calls]

    @property
    def calls(self) -> list[tuple[str, str, str | None]]:
        return [(kind, url, body) for kind, url, body, _ in self.recorded]

    def beacons(self) -> list[tuple[int, bool | None]]:
        """(body bytes, accepted) of every sendBeacon to the events endpoint."""
        return [
            (len((body or "").encode()), queued)
            for kind, url, body, queued in self.recorded
            if kind == "beacon" and url.endswith(EVENTS_PATH)
        ]

    def sent_events(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        for _, url, body in self.calls:
            if url.endswith(EVENTS_PATH):
                assert body is not None
                events.extend(json.loads(body)["events"])
        return events

    def calls_to(self, path: str) -> list[str]:
        return [kind for kind, url, _ in self.calls if url.endswith(path)]


def on_request(log: PageLog, request: Request) -> None:
    log.requests.append(request.url)


def on_response(log: PageLog, response: Response) -> None:
    if response.url.endswith(EVENTS_PATH):
        log.events_responses.append(response.status)


def link(page: Page, name: str) -> None:
    page.get_by_role("link", name=name, exact=True).first.click()


def heading(page: Page, text: str) -> None:
    expect(page.get_by_role("heading", level=1)).to_contain_text(text)


def click_through(page: Page, base: str, canary: str, *, screenshots: bool = False) -> None:
    """A person's session in the demo console; every form value and query string carries `canary`."""
    page.goto(f"{base}/console/")
    heading(page, "Data Manager")
    link(page, "prod db")
    heading(page, "prod db")
    link(page, "sales/eu")
    heading(page, "sales/eu")
    link(page, "invoices 2026")
    expect(page.get_by_role("cell", name="Müller GmbH")).to_be_visible()
    if screenshots:
        OUTPUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUTPUT / "demo-console.png"))
    page.get_by_label("column", exact=True).select_option("customer")
    page.get_by_label("value", exact=True).fill(canary)
    page.get_by_role("button", name="Run query").click()
    page.wait_for_url(re.compile(r"\?filter="))
    assert canary in page.url

    link(page, "Modify")
    page.get_by_label("new column name").fill(canary)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Column saved")).to_be_visible()
    link(page, "usuários")
    expect(page.get_by_role("cell", name="Ana Luísa")).to_be_visible()

    link(page, "SQL")
    page.get_by_label("sql").fill(f'SELECT \'{canary}\' FROM "sales/eu"."invoices 2026";')
    page.get_by_role("button", name="Run!").click()
    expect(page.get_by_text("SQL executed")).to_be_visible()

    link(page, "Events")
    link(page, "notify_usuário")
    link(page, "Logs")
    page.get_by_label("event id").fill(canary)
    page.get_by_role("button", name="Redeliver").click()
    expect(page.get_by_text("Event redelivered")).to_be_visible()

    link(page, "Actions")
    link(page, "créerCommande")
    page.get_by_label("action definition").fill(f"type Mutation {{ {canary}: String }}")
    page.get_by_role("button", name="Save action").click()
    expect(page.get_by_text("Action saved")).to_be_visible()

    link(page, "Remote Schemas")
    link(page, "payments/v2")
    link(page, "Modify")
    page.get_by_label("authorization header").fill(f"Bearer {canary}")
    page.get_by_role("button", name="Save headers").click()
    expect(page.get_by_text("Headers saved")).to_be_visible()

    link(page, "Settings")
    link(page, "Admin Secrets")
    page.get_by_label("admin secret").fill(canary)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Admin secret saved")).to_be_visible()

    # A full page load (a deep link with a row value in the query and the fragment): the first
    # document's pagehide beacons what it still holds.
    page.goto(f"{base}/console/data/manage/schema/dbo/tables/Kunden/browse?filter=id;$eq;{canary}#{canary}")
    expect(page.get_by_role("button", name="Run query")).to_be_visible()

    page.get_by_role("link", name="What this console reports").first.click()
    # With telemetry off the page says so instead (and who turned it off).
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("What this console reports|Telemetry is off"))
    expect(page.get_by_test_id("telemetry-enabled")).not_to_have_text("…")


def close_holding_events(page: Page, log: PageLog, canary: str) -> list[dict[str, Any]]:
    """Send what the page holds, make it hold HELD_ACTIONS known actions (on a route with a canary
    query and fragment), read what it sent so far, and close it: its pagehide beacon must carry the
    held actions. Returns them as the page sends them."""
    stats = page.evaluate(
        """async ([route, canary, n]) => {
          await window.__consoleTelemetry.flush();
          history.pushState(null, '', `${route}?column=${canary}#${canary}`);
          for (let i = 0; i < n; i += 1) {
            window.__consoleStore.dispatch({type: 'ModifyTable/SAVE_COLUMN_EDIT', payload: {column: canary, to: i}});
          }
          return window.__consoleTelemetry.stats();
        }""",
        [CLOSING_ROUTE, canary, HELD_ACTIONS],
    )
    assert (stats["state"], stats["buffered"]) == ("enabled", HELD_ACTIONS)
    log.read_storage(page)
    page.close(run_before_unload=True)
    return [{"type": "ModifyTable/SAVE_COLUMN_EDIT", "route": CLOSING_ROUTE}] * HELD_ACTIONS


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

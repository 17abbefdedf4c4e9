"""The browser client and the demo console in a real Chromium, against a real `console-proxy serve`.

A person's session is replayed: pages with awkward identifiers in their routes, forms whose values
(canaries) end up in action payloads and in the query string, a full page load in the middle, and
the page closed at the end so that the client's pagehide beacon carries the rest. Every call the
page makes to the telemetry endpoints is recorded from inside the page (Playwright's network events
do not show sendBeacon), and what the proxy kept or forwarded is compared with it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, expect

from console_proxy.rules.route_rules import RouteRules

from support.browser import (
    ANONYMIZED_ROUTES,
    EVENTS_PATH,
    OUTPUT,
    SERVER_UUID,
    STATUS_PATH,
    PageLog,
    assert_anonymous,
    assert_clean,
    click_through,
    close_holding_events,
    expected_arrivals,
    heading,
    kept_events,
    link,
    report,
    wait_for,
)
from support.collector import Collector
from support.servers import serving

pytestmark = pytest.mark.browser


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
        held = close_holding_events(page, log, canary)

        sent = log.sent_events() + held
        expected = expected_arrivals(sent, default_rules)
        kept = wait_for(sum(expected.values()), lambda: kept_events(state / "events.jsonl"))

    assert_clean(sent, canary)
    assert Counter((e["event_type"], e["url"]) for e in kept) == expected
    assert_anonymous(kept, canary)
    assert ANONYMIZED_ROUTES - {e["url"] for e in kept} == set()
    # Two documents whose clients asked the status once each, and the reports page that shows it;
    # events went by fetch while a page was open and by beacon on pagehide.
    assert log.calls_to(STATUS_PATH) == ["fetch", "fetch", "fetch"]
    # The full page load in the middle went out by beacon, accepted by the browser.
    assert [queued for _, queued in log.beacons()] == [True]
    assert set(log.events_responses) <= {202}
    # The session's drop-listed bookkeeping (App/*, RNS_*) was sent and dropped, nothing else.
    dropped = Counter(e["type"] for e in sent if default_rules.action(e["type"]) is None)
    assert set(dropped) == {"App/ONGOING_REQUEST", "App/DONE_REQUEST", "RNS_SHOW_NOTIFICATION"}
    assert len(kept) == len(sent) - sum(dropped.values())
    report("local", len(sent), len(kept), sum(dropped.values()))


def test_upstream_collector_receives_every_event_anonymized(
    context: tuple[BrowserContext, PageLog], tmp_path: Path, default_rules: RouteRules
) -> None:
    ctx, log = context
    canary = f"canary-{uuid.uuid4().hex[:12]}"
    with (
        Collector() as collector,
        serving(
            tmp_path, "--state-dir", str(tmp_path / "state"), "--server-uuid", SERVER_UUID, "--upstream", collector.url
        ) as proxy,
    ):
        assert proxy.proc.poll() is None, proxy.output()
        page = ctx.new_page()
        click_through(page, proxy.base, canary)
        expect(page.get_by_test_id("telemetry-enabled")).to_have_text("on")
        held = close_holding_events(page, log, canary)

        sent = log.sent_events() + held
        expected = expected_arrivals(sent, default_rules)
        delivered = wait_for(sum(expected.values()), collector.delivered_events)
        requests = collector.delivered()

    assert_clean(sent, canary)
    assert Counter((e["event_type"], e["url"]) for e in delivered) == expected
    assert_anonymous(delivered, canary)
    assert ANONYMIZED_ROUTES - {e["url"] for e in delivered} == set()
    for request in requests:
        assert request.headers["content-type"].startswith("application/json")
        assert request.headers["idempotency-key"] == request.body["batch_id"]
        assert request.body["topic"] == "console"
        assert canary not in json.dumps(request.headers)
    assert len({e["event_id"] for e in delivered}) == len(delivered)
    report("upstream", len(sent), len(delivered), len(sent) - sum(expected.values()))


def test_telemetry_off_makes_the_browser_send_nothing(context: tuple[BrowserContext, PageLog], tmp_path: Path) -> None:
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
        stats = page.evaluate(
            """(canary) => {
              window.__consoleStore.dispatch({type: 'Data/SET_TABLE', payload: canary});
              return window.__consoleTelemetry.stats();
            }""",
            canary,
        )
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


def test_beacons_stay_within_the_keepalive_budget_when_the_page_goes(
    context: tuple[BrowserContext, PageLog], tmp_path: Path, default_rules: RouteRules
) -> None:
    """Far more than 64 KiB waits when the page goes away: Chromium accepts every beacon the client
    makes, and every event handed to the browser (by fetch or by beacon) arrives."""
    ctx, log = context
    state = tmp_path / "state"
    route = "/console/data/prod%20db/schema/public/tables/t%C3%A1bua-" + "x" * 1500 + "/browse"
    with serving(tmp_path, "--state-dir", str(state), "--server-uuid", SERVER_UUID) as proxy:
        assert proxy.proc.poll() is None, proxy.output()
        page = ctx.new_page()
        page.goto(f"{proxy.base}/console/settings/about")
        heading(page, "About")
        page.wait_for_function("window.__consoleTelemetry.stats().state === 'enabled'")
        # The client's pagehide listener beacons what it holds; then this one dispatches 400 actions
        # on a long route (~600 KiB), which its visibilitychange listener (after pagehide on unload)
        # must fit into what is left of the 64 KiB.
        page.evaluate(
            """(route) => {
              history.pushState(null, '', route);
              window.addEventListener('pagehide', () => {
                for (let i = 0; i < 400; i += 1) {
                  window.__consoleStore.dispatch({type: 'Data/SET_TABLE', payload: {row: i}});
                }
              });
            }""",
            route,
        )
        page.goto(f"{proxy.base}/healthz")
        log.read_storage(page)
        page.close()

        sent = log.sent_events()
        expected = expected_arrivals(sent, default_rules)
        kept = wait_for(sum(expected.values()), lambda: kept_events(state / "events.jsonl"))

    beacons = log.beacons()
    assert len(beacons) >= 2
    assert [queued for _, queued in beacons] == [True] * len(beacons)
    assert sum(size for size, _ in beacons) <= 65536
    assert Counter((e["event_type"], e["url"]) for e in kept) == expected
    assert {e["url"] for e in kept} == {"/settings/about", "/data/SOURCE/schema/SCHEMA/tables/TABLE/browse"}
    # Far from all of the 400 fit: what the budget left behind never reached the network.
    assert 20 < len([e for e in sent if e["type"] == "Data/SET_TABLE"]) < 400
    report("beacon-budget", len(sent), len(kept), len(sent) - sum(expected.values()))


def test_the_console_and_its_routes_work_under_another_prefix(
    context: tuple[BrowserContext, PageLog], tmp_path: Path
) -> None:
    ctx, log = context
    state = tmp_path / "state"
    with serving(
        tmp_path, "--state-dir", str(state), "--server-uuid", SERVER_UUID, "--prefix", "/hasura/console"
    ) as proxy:
        assert proxy.proc.poll() is None, proxy.output()
        page = ctx.new_page()
        # A deep link first: the page finds its bundle under the prefix, not under the route.
        page.goto(f"{proxy.base}/hasura/console/data/prod%20db/schema/sales%2Feu")
        heading(page, "sales/eu")
        link(page, "invoices 2026")
        expect(page.get_by_role("cell", name="Müller GmbH")).to_be_visible()
        # The table's actions come from effects that React runs after the rows are on screen (the
        # router renders a navigation as a transition): wait until the client holds all four, or
        # the tab can leave before the page has dispatched them.
        page.wait_for_function("window.__consoleTelemetry.stats().captured >= 4")
        page.goto(f"{proxy.base}/healthz")
        log.read_storage(page)
        page.close()

        sent = log.sent_events()
        kept = wait_for(len(sent), lambda: kept_events(state / "events.jsonl"))

    bundles = [url for url in log.requests if url.endswith("/main.js")]
    assert bundles == [f"{proxy.base}/hasura/console/dist/main.js"]
    assert [e["route"].startswith("/hasura/console/data/prod%20db/schema/sales%2Feu") for e in sent] == [True] * 4
    assert [(e["event_type"], e["url"]) for e in kept] == [
        ("@@router/LOCATION_CHANGE", "/data/SOURCE/schema/SCHEMA"),
        ("Data/UPDATE_CURRENT_SCHEMA", "/data/SOURCE/schema/SCHEMA"),
        ("@@router/LOCATION_CHANGE", "/data/SOURCE/schema/SCHEMA/tables/TABLE/browse"),
        ("Data/SET_TABLE", "/data/SOURCE/schema/SCHEMA/tables/TABLE/browse"),
    ]


def test_the_reports_page_says_who_turned_telemetry_off_and_how_to_turn_it_on(
    context: tuple[BrowserContext, PageLog], tmp_path: Path
) -> None:
    ctx, _ = context
    with serving(tmp_path, "--state-dir", str(tmp_path / "state"), env={"DO_NOT_TRACK": "1"}) as proxy:
        page = ctx.new_page()
        page.goto(f"{proxy.base}/console/settings/telemetry")
        heading(page, "Telemetry is off")
        expect(page.get_by_test_id("decided-by")).to_have_text("DO_NOT_TRACK=1")
        expect(page.get_by_test_id("how-to-turn-on")).to_have_text(
            "unset DO_NOT_TRACK where console-proxy starts, or start it with --enable-telemetry true."
        )
        text = page.locator("main").inner_text()
        assert "This console reports which" not in text and "kept on this machine" not in text
        page.screenshot(path=str(OUTPUT / "reports-page-telemetry-off.png"), full_page=True)


def test_the_reports_page_names_the_attached_id_keeps_its_own_route_and_fits_1280_px(
    context: tuple[BrowserContext, PageLog], tmp_path: Path
) -> None:
    ctx, _ = context
    state = tmp_path / "state"
    with serving(tmp_path, "--state-dir", str(state), "--server-uuid", SERVER_UUID) as proxy:
        page = ctx.new_page()
        page.goto(f"{proxy.base}/console/settings/telemetry")
        heading(page, "What this console reports")
        expect(page.get_by_test_id("attached-id")).to_have_text(f"server {SERVER_UUID}, from --server-uuid")
        page.get_by_role("button", name="Refresh").click()
        expect(page.get_by_test_id("recent")).to_contain_text("/settings/telemetry")
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280
        assert page.evaluate("document.querySelector('[data-testid=recent]').getBoundingClientRect().right") <= 1280
        page.screenshot(path=str(OUTPUT / "reports-page-1280.png"), full_page=True)
        routes = {e["url"] for e in kept_events(state / "events.jsonl")}
    assert "/settings/telemetry" in routes and "/UNKNOWN" not in routes

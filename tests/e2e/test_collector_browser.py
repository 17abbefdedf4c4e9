"""The collector's dashboard in a real Chromium: it renders at 1280 px without console errors, a value that one
installation alone sent is nowhere in the page or in what the page loaded, and a value enough installations share
is there. The screenshot goes to test-output/collector-dashboard.png."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Response

from console_proxy.collector import ui

from support.collect import batch, cli_event, console_event, in_process, installation, post, server_event
from support.paths import ROOT

pytestmark = pytest.mark.browser

OUTPUT = ROOT / "test-output"
SHARED_PAGE = "/data/SOURCE/schema/SCHEMA/tables/TABLE/browse"
# What a single installation sent: each a value the vocabulary takes, each left out of the figures.
LONELY = ["/settings/metadata-actions", "Data/SOLITARY_ACTION", "v9.8.7", "hasura seed apply"]


def fill(base: str) -> None:
    for i in range(6):
        who = installation(i)
        events = [console_event(who), console_event(who, url="/settings/about", event_type="Data/FETCH_SCHEMA")]
        assert post(base, batch("console", events)).status_code == 200
        assert post(base, batch("server_metrics_v2", [server_event(who)])).status_code == 200
        cli = [cli_event(who, command="hasura version", flags=[], is_error=i == 0), cli_event(who, is_error=i < 5)]
        assert post(base, batch("cli", cli)).status_code == 200
    lonely = installation(99)
    assert (
        post(
            base,
            batch("console", [console_event(lonely, url=LONELY[0], event_type=LONELY[1], server_version=LONELY[2])]),
        ).json()["stored"]
        == 1
    )
    assert post(base, batch("cli", [cli_event(lonely, command=LONELY[3], flags=[])])).json()["stored"] == 1
    assert post(base, batch("server_metrics_v2", [server_event(lonely, metrics={"tables": 50000})])).status_code == 200


def test_the_dashboard_shows_shared_figures_and_withholds_a_single_installations(
    browser: Browser, tmp_path: Path
) -> None:
    # No skip: an unbuilt dashboard is a failure (`make pytest` builds it).
    if ui.script() is None:
        pytest.fail("the collector's dashboard is not built: run `make collector-ui`", pytrace=False)
    with in_process(f"duckdb:///{tmp_path / 'c.duckdb'}", min_installations=5) as (base, _):
        fill(base)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        problems: list[str] = []
        bodies: list[str] = []

        def on_response(response: Response) -> None:
            bodies.append(response.text())

        try:
            page: Page = context.new_page()
            page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("response", on_response)
            page.goto(base + "/")
            page.wait_for_selector("body[data-ready='true']", timeout=15000)
            OUTPUT.mkdir(exist_ok=True)
            page.screenshot(path=str(OUTPUT / "collector-dashboard.png"), full_page=True)
            text = page.inner_text("body")
            html = page.content()
            width = page.evaluate("document.documentElement.scrollWidth")
            canvases = page.evaluate("[...document.querySelectorAll('canvas')].filter(c => c.width > 0).length")
        finally:
            context.close()
    assert problems == []
    assert width <= 1280
    assert canvases == 5
    assert "7 installations in the last 90 days" in text
    for shared in (
        SHARED_PAGE,
        "/settings/about",
        "Data/FETCH_SCHEMA",
        "v2.40.0",
        "hasura version",
        "hasura migrate apply",
        "83.3 %",
    ):
        assert shared in text, shared
    data = next(b for b in bodies if b.startswith('{"min_installations"'))
    assert SHARED_PAGE in data
    for value in LONELY:
        assert value not in html, value
        assert all(value not in body for body in bodies), value
    # The lonely server's 50000 tables: its bucket is in no figure, only the table's header names it.
    assert '"bucket":"10000+"' not in data
    empty = "\u2013"  # the page's mark for a bucket without a figure
    assert "\t".join(["tables", empty, empty, "6", empty, empty, empty]) in text
    for line in (
        "1 page: each seen by fewer than 5 installations",
        "1 action:",
        "1 server version:",
        "1 CLI command:",
        "1 bucket of a server count:",
        "1 error rate of a CLI command",
    ):
        assert line in text, line

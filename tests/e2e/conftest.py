"""Fixtures of the end-to-end tests: a page context on the demo console."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext

from console_proxy.resources import default_static_dir
from console_proxy.rules.route_rules import RouteRules, load_rules

from support.browser import RECORDER, PageLog, on_request, on_response
from support.rules import TEST_RULES


@pytest.fixture(scope="session")
def default_rules() -> RouteRules:
    """The rules the servers of these tests run with: the e2e tests' own (support.rules)."""
    return load_rules(TEST_RULES)


@pytest.fixture(autouse=True)
def test_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process apps load the e2e tests' own rules when no file is named (support.rules)."""
    monkeypatch.setattr("console_proxy.rules.route_rules.default_rules_path", lambda: TEST_RULES)
    monkeypatch.setattr("console_proxy.asgi.runtime.default_rules_path", lambda: TEST_RULES)


@pytest.fixture
def context(browser: Browser) -> Iterator[tuple[BrowserContext, PageLog]]:
    """A page context on the demo console, with the recorder of telemetry calls in every page."""
    if not (default_static_dir() / "dist" / "main.js").exists():
        pytest.fail("the demo console is not built: run `make console`", pytrace=False)
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, locale="pt-BR")
    log = PageLog()
    ctx.add_init_script(RECORDER)
    ctx.on("request", lambda request: on_request(log, request))
    ctx.on("response", lambda response: on_response(log, response))
    try:
        yield ctx, log
    finally:
        ctx.close()

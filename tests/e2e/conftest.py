"""Fixtures of the end-to-end tests: a page context on the demo console."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext

from console_proxy.resources import default_static_dir

from support.browser import RECORDER, PageLog, on_request, on_response


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

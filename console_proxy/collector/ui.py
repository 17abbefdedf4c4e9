"""The dashboard's page and script, as `make collector-ui` builds them from collector-ui/ into the package."""

from __future__ import annotations

from pathlib import Path

UI_DIR = Path(__file__).resolve().parent / "ui"
PAGE_FILE = "index.html"
SCRIPT_FILE = "dashboard.js"

NOT_BUILT = b"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>console-proxy collector</title></head>
<body><h1>console-proxy collector</h1>
<p>The dashboard's page is not built in this installation: run <code>make collector-ui</code> in a checkout
(it needs Node.js). The collector itself works; its figures are at <a href="v1/dashboard">v1/dashboard</a>.</p>
</body></html>
"""


def page() -> bytes:
    """The dashboard's HTML page, or a page that says how to build it."""
    path = UI_DIR / PAGE_FILE
    return path.read_bytes() if path.is_file() else NOT_BUILT


def script() -> bytes | None:
    """The bundled dashboard script (the chart library inside), or None when it is not built."""
    path = UI_DIR / SCRIPT_FILE
    return path.read_bytes() if path.is_file() else None

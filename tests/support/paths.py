"""Where the checkout's files are, for tests in any folder."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
ROUTES_CORPUS = DATA / "console_routes.yaml"

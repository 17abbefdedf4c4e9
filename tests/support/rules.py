"""Rules of the end-to-end tests' own: the shipped file, with `allow` entries for the made-up namespaces the tests
and the demo console send (`Outage/E1`, `A/B`, `ModifyTable/...`), so that those names leave as sent.

The shipped list holds only names the real Hasura consoles dispatch; tests that track events by a name of their
own choosing use this file (serve reads it from CONSOLE_PROXY_RULES, in-process apps through the e2e conftest).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml

from console_proxy.resources import default_rules_path

TEST_NAMESPACES = (
    "A", "B", "C", "W", "Outage", "Loss", "Fault", "Load", "Stream", "Nginx", "Flood", "Full", "Dead", "Dev",
    "Down", "Early", "Kept", "Late", "Live", "Off", "Prod", "Retry", "Status", "Term",
    # the demo console's (console/src): shaped like the real ones, not all of them on the real list
    "Actions", "Data", "Events", "Main", "Metadata", "ModifyTable", "RawSQL", "RemoteSchemas", "ViewTable",
)  # fmt: skip


# Bare constants the tests send.
TEST_NAMES = ("PROD_B", "DEV_B")


def _write() -> Path:
    document = yaml.safe_load(default_rules_path().read_text(encoding="utf-8"))
    extra = [*(f"{ns}/*" for ns in TEST_NAMESPACES), *TEST_NAMES]
    document["actions"]["allow"] = [*document["actions"]["allow"], *extra]
    folder = Path(tempfile.mkdtemp(prefix="console-proxy-test-rules-"))
    path = folder / "route_rules.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


TEST_RULES = _write()

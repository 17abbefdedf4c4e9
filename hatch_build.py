"""Hatch build hook: the wheel carries the built demo console (static/dist/main.js), built here when missing.

A wheel built from a clean clone would otherwise ship a console page that says it is not built yet. Editable
installs are left alone: `make console` builds the bundle for a checkout.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

BUNDLE = Path("static") / "dist" / "main.js"
CONSOLE = Path("console")


class ConsoleBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "console"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        root = Path(self.root)
        if not (root / BUNDLE).is_file():
            build_console(root)


def build_console(root: Path) -> None:
    """`npm ci` (when console/node_modules is missing) and `npm run build` in console/; SystemExit on failure."""
    npm = shutil.which("npm")
    if npm is None or not (root / CONSOLE / "package.json").is_file():
        raise SystemExit(
            f"console-proxy's wheel carries the demo console, and {BUNDLE} is missing: building it needs npm "
            f"(Node.js) and the console/ sources. Install Node.js and build again, or run `make console` first."
        )
    steps = [[npm, "run", "build"]]
    if not (root / CONSOLE / "node_modules").is_dir():
        steps.insert(0, [npm, "ci", "--no-audit", "--no-fund", "--prefer-offline"])
    for step in steps:
        result = subprocess.run(step, cwd=root / CONSOLE, check=False)
        if result.returncode != 0:
            raise SystemExit(f"building the demo console failed: `{' '.join(step[1:])}` exited {result.returncode}")
    if not (root / BUNDLE).is_file():
        raise SystemExit(f"building the demo console did not produce {BUNDLE}")

"""Hatch build hook: the wheel carries the built demo console (static/dist/main.js) and the collector's dashboard
(console_proxy/collector/ui/dashboard.js), each built here when missing.

A wheel built from a clean clone would otherwise ship a console page, or a dashboard, that says it is not built yet.
Editable installs are left alone: `make console collector-ui` builds the bundles for a checkout.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

# (what is built, the npm project that builds it, its name in messages)
BUNDLES = (
    (Path("static") / "dist" / "main.js", Path("console"), "the demo console"),
    (Path("console_proxy") / "collector" / "ui" / "dashboard.js", Path("collector-ui"), "the collector's dashboard"),
)


class ConsoleBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "console"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        root = Path(self.root)
        for bundle, project, what in BUNDLES:
            if not (root / bundle).is_file():
                build_bundle(root, bundle, project, what)


def build_bundle(root: Path, bundle: Path, project: Path, what: str) -> None:
    """`npm ci` (when node_modules is missing) and `npm run build` in `project`; SystemExit on failure."""
    npm = shutil.which("npm")
    if npm is None or not (root / project / "package.json").is_file():
        raise SystemExit(
            f"console-proxy's wheel carries {what}, and {bundle} is missing: building it needs npm "
            f"(Node.js) and the {project}/ sources. Install Node.js and build again, or run `make {project}` first."
        )
    steps = [[npm, "run", "build"]]
    if not (root / project / "node_modules").is_dir():
        steps.insert(0, [npm, "ci", "--no-audit", "--no-fund", "--prefer-offline"])
    for step in steps:
        result = subprocess.run(step, cwd=root / project, check=False)
        if result.returncode != 0:
            raise SystemExit(f"building {what} failed: `{' '.join(step[1:])}` exited {result.returncode}")
    if not (root / bundle).is_file():
        raise SystemExit(f"building {what} did not produce {bundle}")

"""Hatch build hook: the wheel carries the built demo console (static/dist/main.js) and the collector's dashboard
(console_proxy/collector/ui/dashboard.js), each built here when missing, and the pure core of the hot path compiled
into C extensions with mypyc when a C compiler is there (docs/performance.md, "The compiled form").

A wheel built from a clean clone would otherwise ship a console page, or a dashboard, that says it is not built yet.
Editable installs are left alone: `make console collector-ui` builds the bundles for a checkout, and an editable
install runs the Python sources as they are (never compiled).

What is compiled is the hook's `compiled` list in pyproject.toml. CONSOLE_PROXY_PURE at build time decides:
unset, compiled when a C compiler and the Python headers are found and the compile succeeds, else the pure modules
(said on stderr);
`1`, the pure modules whatever is there; `0`, compiled or the build fails (what `make test` builds, so that a
fallback cannot pass unseen). The .py sources ship beside the extensions either way: Python imports an extension
module before a source file of the same name.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

# (what is built, the npm project that builds it, its name in messages)
BUNDLES = (
    (Path("static") / "dist" / "main.js", Path("console"), "the demo console"),
    (Path("console_proxy") / "collector" / "ui" / "dashboard.js", Path("collector-ui"), "the collector's dashboard"),
)

PURE_ENV = "CONSOLE_PROXY_PURE"
# What the compiling step needs in the build environment: mypyc (in mypy), setuptools to drive the C compiler, and
# the typed dependencies the compiled modules import (mypy reads their types).
COMPILE_REQUIREMENTS = ["mypy>=2.4,<3", "setuptools>=70", "orjson>=3.9", "pyyaml>=6.0", "types-PyYAML"]
# The shared library of all compiled modules, at the top of site-packages: console_proxy__mypyc.<abi>.so.
GROUP_NAME = "console_proxy"
# Run in the build environment's Python, in a process of its own: mypyc type-checks the modules, writes the C,
# and setuptools compiles it into `lib`. Arguments: one JSON object {modules, lib, temp}.
_COMPILE = """
import json, sys
from mypyc.build import mypycify
from setuptools import Distribution
args = json.loads(sys.argv[1])
# The build environment holds only what the compiled modules import; the modules mypy follows from them (the package's
# __init__ names the ASGI stack for type checkers) are read without their errors, and with a cache of the build's own,
# so a checkout's .mypy_cache (made with every dependency there) can neither help nor hide a failure.
options = ["--follow-imports=silent", "--cache-dir", args["temp"] + "/mypy-cache"]
extensions = mypycify(
    options + args["modules"], opt_level="3", target_dir=args["temp"], group_name=args["group"]
)
build_ext = Distribution({"name": "console-proxy", "ext_modules": extensions}).get_command_obj("build_ext")
build_ext.build_lib, build_ext.build_temp = args["lib"], args["temp"]
build_ext.ensure_finalized()
build_ext.run()
"""


class ConsoleBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "console"

    def dependencies(self) -> list[str]:
        # Asked before any build, editable ones included (hatchling cannot tell them apart here).
        return COMPILE_REQUIREMENTS if self._compile_wanted(quiet=True) else []

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        root = Path(self.root)
        for bundle, project, what in BUNDLES:
            if not (root / bundle).is_file():
                build_bundle(root, bundle, project, what)
        if self._compile_wanted(quiet=False):
            try:
                built = compile_modules(root, self.compiled_modules())
            except CompileError as exc:
                if os.environ.get(PURE_ENV) == "0":
                    raise SystemExit(f"{exc}; {PURE_ENV}=1 builds the pure form") from None
                print(f"console-proxy: {exc}; installing the pure-Python modules", file=sys.stderr)
                return
            build_data["force_include"].update({str(path): target for path, target in built.items()})
            # Extensions for this interpreter and platform: the wheel is tagged cp311-cp311-linux_x86_64 and so on.
            build_data["pure_python"] = False
            build_data["infer_tag"] = True

    def compiled_modules(self) -> list[str]:
        modules = self.config.get("compiled", [])
        if not isinstance(modules, list) or not all(isinstance(m, str) for m in modules):
            raise SystemExit("tool.hatch.build.targets.wheel.hooks.custom.compiled must be a list of file paths")
        return modules

    def _compile_wanted(self, *, quiet: bool) -> bool:
        choice = os.environ.get(PURE_ENV, "")
        if choice not in ("", "0", "1"):
            raise SystemExit(f"{PURE_ENV}={choice!r}: expected 1 (pure), 0 (compiled) or unset (compiled if possible)")
        if choice == "1" or not self.compiled_modules():
            return False
        missing = missing_toolchain()
        if missing is None:
            return True
        if choice == "0":
            raise SystemExit(f"{PURE_ENV}=0 asks for the compiled modules, and {missing}")
        if not quiet:
            print(f"console-proxy: {missing}; installing the pure-Python modules", file=sys.stderr)
        return False


class CompileError(Exception):
    """mypyc or the C compiler failed."""


def missing_toolchain() -> str | None:
    """None when a C compiler and the Python headers are there; else what is missing, as a sentence part."""
    compiler = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        return f"no C compiler ({compiler}) was found"
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not headers.is_file():
        return f"the Python headers ({headers}) are not installed"
    return None


def compile_modules(root: Path, modules: list[str]) -> dict[Path, str]:
    """Compile `modules` (paths under `root`) with mypyc; the built extensions and their paths in the wheel.

    The C sources and objects stay in build/mypyc/ (gitignored): setuptools recompiles only what changed.
    """
    work = root / "build" / "mypyc" / f"{sys.implementation.cache_tag}-{sysconfig.get_platform()}"
    lib, temp = work / "lib", work / "temp"
    args = json.dumps({"modules": modules, "lib": str(lib), "temp": str(temp), "group": GROUP_NAME})
    result = subprocess.run([sys.executable, "-c", _COMPILE, args], cwd=root, check=False)
    if result.returncode != 0:
        raise CompileError(f"compiling the hot path with mypyc failed (exit {result.returncode})")
    # Each module's own extension, and the shared library that holds their code.
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    wanted = [Path(module).with_suffix(suffix).as_posix() for module in modules] + [f"{GROUP_NAME}__mypyc{suffix}"]
    missing = [name for name in wanted if not (lib / name).is_file()]
    if missing:
        raise CompileError(f"mypyc did not build {', '.join(missing)}")
    return {lib / name: name for name in wanted}


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

"""The compiled form of the hot path, as the build hook (hatch_build.py) decides it: which modules, and whether a
wheel built here has them compiled (docs/performance.md, "The compiled form")."""

from __future__ import annotations

import os
import shutil
import sysconfig
import tomllib
from collections.abc import Mapping
from pathlib import Path

from support.paths import ROOT

EXT_SUFFIX: str = sysconfig.get_config_var("EXT_SUFFIX")


def compiled_modules() -> list[str]:
    """The build hook's `compiled` list in pyproject.toml, as module names."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    paths: list[str] = config["tool"]["hatch"]["build"]["targets"]["wheel"]["hooks"]["custom"]["compiled"]
    return [path.removesuffix(".py").replace("/", ".") for path in paths]


def builds_compiled(env: Mapping[str, str] = os.environ) -> bool:
    """Whether a wheel built here with `env` has the compiled modules: a C compiler and the Python headers are
    there, and CONSOLE_PROXY_PURE is not 1 (the hook's own test, repeated)."""
    if env.get("CONSOLE_PROXY_PURE") == "1":
        return False
    compiler = (env.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    return shutil.which(compiler) is not None and headers.is_file()

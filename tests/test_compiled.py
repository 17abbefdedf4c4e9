"""Which form of the hot path's modules this run tests (docs/performance.md, "The compiled form").

`make test` runs the suite on the editable install, where every module is its Python source, and runs
tests/core, tests/rules, tests/sources and this file again in .venv-compiled on a wheel built with
CONSOLE_PROXY_PURE=0, with CONSOLE_PROXY_TEST_COMPILED=1: there each module of the build hook's list must be a
C extension, so that a wheel that fell back to the pure modules cannot pass as the compiled form.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
from pathlib import Path

import pytest

from support.compiled import EXT_SUFFIX, compiled_modules
from support.paths import ROOT

COMPILED_RUN = os.environ.get("CONSOLE_PROXY_TEST_COMPILED") == "1"


def test_the_list_names_modules_of_the_package_and_no_package() -> None:
    names = compiled_modules()
    assert names and len(set(names)) == len(names)
    for name in names:
        assert name.startswith("console_proxy.") and not name.endswith("__init__")
        assert (ROOT / (name.replace(".", "/") + ".py")).is_file(), name


@pytest.mark.parametrize("name", compiled_modules())
def test_each_module_is_in_the_form_this_run_tests(name: str) -> None:
    module = importlib.import_module(name)
    path = Path(module.__file__ or "")
    if COMPILED_RUN:
        # The wheel's extension in the environment's site-packages, never the checkout's source.
        assert path.name.endswith(EXT_SUFFIX), path
        assert isinstance(module.__loader__, importlib.machinery.ExtensionFileLoader)
        assert "site-packages" in path.parts, path
    else:
        # An editable install runs the sources of the checkout as they are.
        assert path == ROOT / (name.replace(".", "/") + ".py"), path


def test_the_compiled_modules_share_one_library_beside_the_package() -> None:
    package = Path(importlib.import_module("console_proxy").__file__ or "").parent
    library = package.parent / f"console_proxy__mypyc{EXT_SUFFIX}"
    assert library.is_file() == COMPILED_RUN, library

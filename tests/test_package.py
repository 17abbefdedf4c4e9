"""The package as people get it: importable from a plain checkout, runnable as a module, one version."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import console_proxy

ROOT = Path(__file__).resolve().parent.parent
# A checkout that was never installed has no distribution metadata: make every lookup of it fail.
WITHOUT_METADATA = (
    "import importlib.metadata as m\n"
    "def missing(name):\n"
    "    raise m.PackageNotFoundError(name)\n"
    "m.version = m.metadata = m.distribution = missing\n"
)


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def test_importable_from_a_checkout_without_distribution_metadata() -> None:
    result = run_python(WITHOUT_METADATA + "import console_proxy\nprint(console_proxy.__version__)")
    assert (result.returncode, result.stdout, result.stderr) == (0, "0.2.0\n", "")


def test_python_dash_m_runs_the_command_line_from_a_checkout() -> None:
    code = (
        WITHOUT_METADATA
        + "import runpy, sys\nsys.argv[0] = 'console_proxy'\nrunpy.run_module('console_proxy', run_name='__main__')"
    )
    result = run_python(code, "--version")
    assert (result.returncode, result.stdout) == (0, "console-proxy, version 0.2.0\n")


def test_one_version_source() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["dynamic"] == ["version"] and "version" not in project["project"]
    assert project["tool"]["hatch"]["version"]["path"] == "console_proxy/_version.py"
    assert console_proxy.__version__ == "0.2.0"


def test_the_package_says_it_is_typed_and_the_license_is_the_declared_one() -> None:
    assert (ROOT / "console_proxy" / "py.typed").is_file()
    license_text = (ROOT / "LICENSE").read_text()
    assert license_text.startswith(
        "\n                                 Apache License\n                           Version 2.0"
    )
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"] == "Apache-2.0"


def _clean_clone(tmp_path: Path) -> Path:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    assert not (clone / "static" / "dist").exists()
    return clone


def _build_wheel(clone: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(clone / "out")],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_a_wheel_built_from_a_clean_clone_carries_the_built_demo_console(tmp_path: Path) -> None:
    clone = _clean_clone(tmp_path)
    # The pure form: what is compiled is tests/test_packaging.py's and test_dockerfile.py's to check.
    result = _build_wheel(clone, env={**os.environ, "CONSOLE_PROXY_PURE": "1"})
    assert result.returncode == 0, result.stderr
    (wheel,) = (clone / "out").glob("console_proxy-0.2.0-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        bundle = archive.getinfo("console_proxy/static/dist/main.js")
    assert bundle.file_size > 10_000
    assert {
        "console_proxy/py.typed",
        "console_proxy/route_rules.yaml",
        "console_proxy/static/index.html",
        "console_proxy-0.2.0.dist-info/licenses/LICENSE",
    } <= names


def test_without_npm_the_wheel_build_fails_saying_why(tmp_path: Path) -> None:
    clone = _clean_clone(tmp_path)
    result = _build_wheel(clone, env={"PATH": str(tmp_path / "nothing"), "HOME": str(tmp_path)})
    assert result.returncode != 0
    assert "static/dist/main.js is missing: building it needs npm (Node.js)" in result.stderr
    assert not (clone / "out").exists() or not list((clone / "out").glob("*.whl"))

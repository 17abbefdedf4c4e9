"""The wheel as an operator installs it: a clean virtual environment without the test extra."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import httpx
import websockets.sync.client

from support.compiled import builds_compiled, compiled_modules
from support.servers import start_serve

ROOT = Path(__file__).parent.parent
INSTALL_TIMEOUT_S = 600


def _run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_plain_install_of_the_wheel_serves_the_websocket(tmp_path: Path) -> None:
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(tmp_path / "dist"), str(ROOT))
    (wheel,) = (tmp_path / "dist").glob("console_proxy-*.whl")
    # With a C compiler here the hot path is compiled, and the wheel is for this interpreter and platform only.
    assert wheel.name.endswith("-py3-none-any.whl") != builds_compiled(), wheel.name
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", str(venv))
    python = str(venv / "bin" / "python")
    _run(python, "-m", "pip", "install", "--quiet", str(wheel))
    # Nothing of the test extra came along, nor mypy and its runtime library that compiled the modules: the runtime
    # dependencies alone must serve WebSocket.
    probe = (
        "import importlib.util as u; print([m for m in ('pytest', 'hypothesis', 'mypy', 'librt') if u.find_spec(m)])"
    )
    assert _run(python, "-c", probe).strip() == "[]"
    # -P: the working directory (perhaps a checkout) is not put first on the path.
    files = _run(python, "-P", "-c", "; ".join(f"import {m}; print({m}.__file__)" for m in compiled_modules()))
    assert {Path(file).suffix for file in files.split()} == ({".so"} if builds_compiled() else {".py"})

    state = tmp_path / "state"
    served = start_serve(tmp_path, "--state-dir", str(state), python=python, ready_path="/readyz")
    try:
        assert served.proc.poll() is None, served.output()
        assert "websocket:" not in served.output()
        url = served.base.replace("http://", "ws://") + "/_telemetry/v1/ws"
        with websockets.sync.client.connect(url) as ws:
            for route in ("/console/data/db1/schema/public/tables/users/browse", "/console/settings/about"):
                ws.send(json.dumps({"topic": "console", "data": {"event_type": "Data/SET_TABLE", "url": route}}))
                assert json.loads(ws.recv(timeout=10)) == {"accepted": 1, "dropped": 0}
        recent = httpx.get(served.base + "/_telemetry/v1/recent").json()
        assert [event["url"] for event in recent][-2:] == [
            "/data/SOURCE/schema/SCHEMA/tables/TABLE/browse",
            "/settings/about",
        ]
    finally:
        assert served.stop() == 0, served.output()


def _wheel(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(tmp_path / "dist"), str(ROOT)]
    return subprocess.run(
        args, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, env={**os.environ, **env}, check=False
    )


def test_without_a_c_compiler_the_wheel_holds_the_pure_modules(tmp_path: Path) -> None:
    built = _wheel(tmp_path, CC="/nonexistent/cc", CONSOLE_PROXY_PURE="")
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (tmp_path / "dist").glob("console_proxy-*.whl")
    assert wheel.name.endswith("-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert not [name for name in names if name.endswith(".so")]
    assert all(f"{name.replace('.', '/')}.py" in names for name in compiled_modules())


def test_asking_for_the_compiled_modules_without_a_compiler_fails_the_build(tmp_path: Path) -> None:
    built = _wheel(tmp_path, CC="/nonexistent/cc", CONSOLE_PROXY_PURE="0")
    assert built.returncode != 0
    assert "CONSOLE_PROXY_PURE=0 asks for the compiled modules, and no C compiler (/nonexistent/cc) was found" in (
        built.stdout + built.stderr
    )
    assert not list((tmp_path / "dist").glob("*.whl"))


def test_the_compiled_build_needs_nothing_a_checkout_made_before(tmp_path: Path) -> None:
    # An operator's `pip install .`: a new virtual environment without the runtime dependencies yet, a clone without
    # a .mypy_cache. mypyc follows the package's __init__ into the ASGI stack; it once found Starlette only through the
    # venv's site-packages or a cache `make typecheck` had left, and failed (or fell back to pure) from a clean start.
    top = {".git", ".venv", ".venv-compiled", ".mypy_cache", ".ruff_cache", ".pytest_cache", "build", "dist"}

    def leftovers(folder: str, names: list[str]) -> set[str]:
        return top & set(names) if Path(folder) == ROOT else {".mypy_cache"} & set(names)

    tree = tmp_path / "tree"
    shutil.copytree(ROOT, tree, ignore=leftovers, symlinks=True)
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", str(venv))
    python = str(venv / "bin" / "python")
    assert _run(python, "-c", "import importlib.util as u; print(u.find_spec('starlette'))").strip() == "None"
    args = [python, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(tmp_path / "dist"), str(tree)]
    env = {**os.environ, "CONSOLE_PROXY_PURE": "0"}
    built = subprocess.run(args, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, env=env, check=False)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (tmp_path / "dist").glob("console_proxy-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    assert {module.replace(".", "/") + suffix for module in compiled_modules()} <= set(names), names
    assert f"console_proxy__mypyc{suffix}" in names
    assert not (tree / ".mypy_cache").exists()

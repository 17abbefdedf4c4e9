"""The Dockerfile, checked without a Docker engine (none runs here): its stages and what the image is; every file it
copies is in the repository; and its build stages' commands run for real, as written, in a directory laid out as
its WORKDIR and COPY lines say. The wheel they build is installed and checked the way the image runs it."""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from support.compiled import EXT_SUFFIX, compiled_modules
from support.paths import ROOT

DOCKERFILE = ROOT / "Dockerfile"


@dataclasses.dataclass
class Stage:
    image: str
    name: str | None
    steps: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    def all(self, instruction: str) -> list[str]:
        return [args for kind, args in self.steps if kind == instruction]


def stages() -> list[Stage]:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    found: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        kind, _, args = line.partition(" ")
        if kind == "FROM":
            image, _, name = args.partition(" AS ")
            found.append(Stage(image.strip(), name.strip() or None))
        else:
            found[-1].steps.append((kind, " ".join(args.split())))
    return found


def test_three_stages_node_builds_the_console_python_the_wheel_and_a_slim_runtime() -> None:
    console, wheel, runtime = stages()
    assert (console.name, console.image.split(":")[0]) == ("console", "node")
    assert console.all("RUN") == ["npm ci --no-audit --no-fund", "npm run build"]
    # The full image has the C compiler that compiles the hot path; the wheel it makes is for its Python and glibc,
    # so the slim runtime is the same Python on the same Debian release.
    assert (wheel.name, wheel.image) == ("wheel", "python:3.11-bookworm")
    assert any(run.startswith("CONSOLE_PROXY_PURE=0 pip wheel ") for run in wheel.all("RUN"))
    assert runtime.image == "python:3.11-slim-bookworm" and runtime.name is None
    [install] = runtime.all("RUN")
    assert '"$(ls /tmp/wheels/console_proxy-*.whl)[redis]"' in install and "useradd --system --uid 10001" in install


def test_the_image_runs_as_its_own_user_keeps_its_state_on_a_volume_and_checks_readyz() -> None:
    runtime = stages()[-1]
    [user] = runtime.all("USER")
    assert user not in ("root", "0")
    [env] = runtime.all("ENV")
    settings = dict(item.split("=", 1) for item in shlex.split(env))
    assert settings == {"CONSOLE_PROXY_HOST": "0.0.0.0", "CONSOLE_PROXY_STATE_DIR": "/var/lib/console-proxy"}
    [volume] = runtime.all("VOLUME")
    assert json.loads(volume) == [settings["CONSOLE_PROXY_STATE_DIR"]]
    [health] = runtime.all("HEALTHCHECK")
    assert "CMD " in health and "http://127.0.0.1:9695/readyz" in health
    assert runtime.all("ENTRYPOINT") == ['["console-proxy"]'] and runtime.all("CMD") == ['["serve"]']


def test_every_file_it_copies_is_in_the_repository_and_not_ignored() -> None:
    ignored = [
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip() and line[0] != "#"
    ]
    for stage in stages():
        for copy in stage.all("COPY"):
            if copy.startswith("--from="):
                continue
            *sources, _ = copy.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
                assert not any(source == pattern or source.startswith(pattern + "/") for pattern in ignored)


def _run_stage(stage: Stage, roots: dict[str, Path], root: Path) -> None:
    """WORKDIR, COPY and RUN of a build stage, with the image's / at `root` (and other stages' at `roots`)."""
    cwd = root
    for kind, args in stage.steps:
        if kind == "WORKDIR":
            cwd = root / args.lstrip("/")
            cwd.mkdir(parents=True, exist_ok=True)
        elif kind == "COPY":
            origin = ROOT
            if args.startswith("--from="):
                name, args = args.removeprefix("--from=").split(" ", 1)
                origin = roots[name]
            *sources, target = args.split()
            destination = (root / target.lstrip("/")) if target.startswith("/") else cwd / target
            for source in sources:
                path = origin / source.lstrip("/")
                if path.is_dir():
                    shutil.copytree(
                        path, destination, dirs_exist_ok=True, ignore=shutil.ignore_patterns("node_modules")
                    )
                else:
                    (destination if target.endswith("/") else destination.parent).mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, destination / path.name if target.endswith("/") else destination)
        elif kind == "RUN":
            assert " /" not in f" {args}", f"a build step with an absolute path cannot run here: {args}"
            env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
            result = subprocess.run(["sh", "-c", args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
            assert result.returncode == 0, f"RUN {args}:\n{result.stdout}\n{result.stderr}"


def test_its_build_steps_work_and_the_wheel_they_make_serves_the_console(tmp_path: Path) -> None:
    console, wheel, _ = stages()
    roots = {"console": tmp_path / "console", "wheel": tmp_path / "wheel"}
    _run_stage(console, roots, roots["console"])
    assert (roots["console"] / "src" / "static" / "dist" / "main.js").is_file()
    _run_stage(wheel, roots, roots["wheel"])
    [built] = (roots["wheel"] / "src" / "wheels").glob("console_proxy-*.whl")
    # As the runtime stage installs it, with its extra, into an environment of its own; then run with its ENV.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "--quiet", f"{built}[redis]"], check=True, timeout=600)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HASURA_", "DO_NOT_TRACK", "CONSOLE_PROXY_"))}
    env.update(HOME=str(tmp_path), CONSOLE_PROXY_HOST="0.0.0.0", CONSOLE_PROXY_STATE_DIR=str(tmp_path / "state"))
    code = (
        "import console_proxy, redis, console_proxy.resources as r; "
        "print(console_proxy.__file__); print((r.default_static_dir() / 'dist' / 'main.js').is_file()); "
        + "; ".join(f"import {name}; print({name}.__file__)" for name in compiled_modules())
    )
    shown = subprocess.run([python, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=tmp_path)
    package, bundle, *compiled = shown.stdout.splitlines()
    assert Path(package).parent.parent.is_relative_to(venv) and bundle == "True"
    # The hot path's modules are the C extensions the wheel stage compiled.
    assert compiled and all(file.endswith(EXT_SUFFIX) for file in compiled), compiled
    check = subprocess.run(
        [sys.executable, "-m", "console_proxy", "serve", "--check"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.splitlines()[2] == f"state directory: ok, {tmp_path / 'state'} is writable"

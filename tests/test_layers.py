"""The shape of the house (docs/design.md, "Layers"): arrows only point down, no import circle, small modules."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import console_proxy

PACKAGE = Path(console_proxy.__file__).parent

# Bottom up. A module may import its own layer and the ones below, never one above.
LAYERS: dict[str, int] = {
    "_version": 0,
    "resources": 0,
    "core": 0,
    "rules": 1,
    "sources": 1,
    "hasura": 2,
    "delivery": 2,
    "asgi": 3,
    "server": 3,
    "proxy": 3,
    "collector": 3,
    "cli": 4,
    "__main__": 4,
}
MAX_LOOSE_MODULES = 8
MAX_MODULE_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield module_name(path), path


def room(module: str) -> str:
    """`console_proxy.delivery.spool.db` -> `delivery`; the package itself -> `` (its face)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imports(path: Path, *, top_level_only: bool) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("console_proxy"):
            for alias in node.names:
                yield f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name.startswith("console_proxy"))


def resolve(name: str, known: set[str]) -> str | None:
    """The module an imported name lives in: itself when it is a module, else its parent."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def test_every_room_has_a_layer() -> None:
    rooms = {room(name) for name, _ in modules()} - {""}
    assert rooms - set(LAYERS) == set()


def test_no_import_runs_up_a_layer() -> None:
    known = {name for name, _ in modules()}
    upward = []
    for name, path in modules():
        if room(name) == "":
            continue  # the package face re-exports from every layer, lazily
        for imported in imports(path, top_level_only=False):
            target = resolve(imported, known)
            if target is None or room(target) == "":
                continue
            if LAYERS[room(target)] > LAYERS[room(name)]:
                upward.append(f"{name} -> {target}")
    assert upward == []


def test_no_import_circle_at_module_level() -> None:
    known = {name for name, _ in modules()}
    graph = {
        name: {t for t in (resolve(i, known) for i in imports(path, top_level_only=True)) if t and t != name}
        for name, path in modules()
    }
    # A package's __init__ importing its own modules is how a package face works, not a circle.
    for name in graph:
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    circles = []
    done: set[str] = set()

    def visit(node: str, stack: list[str]) -> None:
        if node in stack:
            circles.append(" -> ".join([*stack[stack.index(node) :], node]))
            return
        if node in done:
            return
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, [*stack, node])
        done.add(node)

    for name in sorted(graph):
        visit(name, [])
    assert circles == []


def test_few_loose_modules_at_the_top_and_none_too_long() -> None:
    loose = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(loose) <= MAX_LOOSE_MODULES, loose
    too_long = {
        name: lines for name, path in modules() if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert too_long == {}


def test_rules_check_does_not_load_the_asgi_stack() -> None:
    # The package face loads its names on first use: a command that only reads rules stays light.
    import subprocess
    import sys

    code = (
        "import sys, console_proxy; from console_proxy import load_rules; load_rules();"
        "print(sorted(m for m in sys.modules if m.startswith(('starlette', 'uvicorn', 'httpx', 'console_proxy.asgi'))))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"

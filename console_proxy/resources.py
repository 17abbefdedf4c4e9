"""Where the files shipped with the package live, in a wheel or in a checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent


def _shipped(name: str) -> Path:
    # A wheel carries the file inside the package (hatch force-include); an editable
    # install or a plain checkout has it at the project root.
    inside = _PACKAGE / name
    return inside if inside.exists() else _CHECKOUT / name


def default_rules_path() -> Path:
    """The `route_rules.yaml` that ships with console-proxy."""
    return _shipped("route_rules.yaml")


def default_static_dir() -> Path:
    """The demo console's directory that ships with console-proxy."""
    return _shipped("static")

"""The `console-proxy` command line: the click group, its shared options, `serve`, `status` and `rules`."""

from __future__ import annotations

from console_proxy.cli.main import main

__all__ = ["main"]

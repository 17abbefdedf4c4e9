"""`python -m console_proxy`: the `console-proxy` command."""

from __future__ import annotations

from console_proxy.cli.main import main

main(prog_name="console-proxy")

from __future__ import annotations

from console_proxy.cli import main

main()

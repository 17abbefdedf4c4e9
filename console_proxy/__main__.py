from __future__ import annotations

from console_proxy.cli.main import main

main()

from __future__ import annotations

from pathlib import Path

import pytest

from console_proxy.core.settings import resolve_state_dir


@pytest.mark.parametrize(
    ("state_dir", "env", "expected"),
    [
        (Path("/given"), {"XDG_STATE_HOME": "/xdg", "HOME": "/home/u"}, Path("/given")),
        (None, {"XDG_STATE_HOME": "/xdg", "HOME": "/home/u"}, Path("/xdg/console-proxy")),
        (None, {"XDG_STATE_HOME": "relative", "HOME": "/home/u"}, Path("/home/u/.local/state/console-proxy")),
        (None, {"XDG_STATE_HOME": "", "HOME": "/home/u"}, Path("/home/u/.local/state/console-proxy")),
        (None, {"HOME": "/home/u"}, Path("/home/u/.local/state/console-proxy")),
    ],
)
def test_resolve_state_dir(state_dir: Path | None, env: dict[str, str], expected: Path) -> None:
    assert resolve_state_dir(state_dir, env) == expected

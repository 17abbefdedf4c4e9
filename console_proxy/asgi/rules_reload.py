"""Rules reloading while serving: on request (SIGHUP) and when the file changes; a bad file keeps the old rules."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

RULES_POLL_INTERVAL_S = 2.0

logger = logging.getLogger("console_proxy")


class Reloadable(Protocol):
    def reload(self) -> list[str]: ...


def _fingerprint(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


class RulesReloader:
    """Reloads `holder` when `request()` is called (the SIGHUP handler) or `path` changes on disk; tells
    `on_reload` whether each reload was taken (the metrics count them).

    `watch()` runs until cancelled; the file is polled every `interval` seconds (cheap: one stat).
    """

    def __init__(
        self,
        holder: Reloadable,
        path: Path,
        *,
        interval: float = RULES_POLL_INTERVAL_S,
        on_reload: Callable[[bool], None] | None = None,
    ) -> None:
        self.holder = holder
        self.path = path
        self.interval = interval
        self._on_reload = on_reload
        self._wakeup: asyncio.Event | None = None
        self._last = _fingerprint(path)

    def request(self) -> None:
        """Ask for a reload now; call from the event loop's thread (a loop signal handler is)."""
        if self._wakeup is not None:
            self._wakeup.set()

    async def reload(self, reason: str) -> bool:
        """Reload in a worker thread; log the outcome (a refused file's FILE:LINE:COL lines); True when taken."""
        self._last = _fingerprint(self.path)
        errors = await asyncio.to_thread(self.holder.reload)
        if self._on_reload is not None:
            self._on_reload(not errors)
        if errors:
            logger.error("rules reload (%s) refused, keeping the previous rules:\n%s", reason, "\n".join(errors))
            return False
        logger.info("rules reloaded (%s)", reason)
        return True

    async def watch(self) -> None:
        self._wakeup = asyncio.Event()
        while True:
            try:
                await asyncio.wait_for(self._wakeup.wait(), self.interval)
            except TimeoutError:
                if _fingerprint(self.path) != self._last:
                    await self.reload("file changed")
            else:
                self._wakeup.clear()
                await self.reload("SIGHUP")

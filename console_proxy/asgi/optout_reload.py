"""The opt-out re-decided while serving: on request (SIGHUP) and when the CLI's config file changes (one `stat`
every 2 s, as for the rules file). Only the CLI config can change the decision of a running process: the flag and
the environment are fixed for its life (docs/design.md, "Identity and opt-out")."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable

from console_proxy.core.errors import SettingsError
from console_proxy.hasura.optout import TelemetryDecision

DECISION_POLL_INTERVAL_S = 2.0

logger = logging.getLogger("console_proxy")


class DecisionReloader:
    """Decides again (`decide`, run in a worker thread) when `request()` is called or `fingerprint()` changes, and
    hands every new decision to `apply`. A CLI config that cannot be read or holds a bad value turns telemetry off
    (with its one sentence in the log; `unreadable()` is that decision) until it reads well again: off is the safe
    reading of an opt-out that could not be read.

    `watch()` runs until cancelled."""

    def __init__(
        self,
        decide: Callable[[], TelemetryDecision],
        fingerprint: Callable[[], Hashable],
        apply: Callable[[TelemetryDecision, str], Awaitable[None]],
        *,
        unreadable: Callable[[], TelemetryDecision],
        interval: float = DECISION_POLL_INTERVAL_S,
    ) -> None:
        self._decide = decide
        self._unreadable = unreadable
        self._fingerprint = fingerprint
        self._apply = apply
        self.interval = interval
        self._wakeup: asyncio.Event | None = None
        self._last = fingerprint()

    def request(self) -> None:
        """Decide again now; call from the event loop's thread (a loop signal handler is)."""
        if self._wakeup is not None:
            self._wakeup.set()

    async def redecide(self, reason: str) -> TelemetryDecision:
        self._last = self._fingerprint()
        try:
            decision = await asyncio.to_thread(self._decide)
        except SettingsError as exc:
            logger.error("telemetry re-decided (%s): %s", reason, exc)
            decision = self._unreadable()
        await self._apply(decision, reason)
        return decision

    async def watch(self) -> None:
        self._wakeup = asyncio.Event()
        while True:
            try:
                await asyncio.wait_for(self._wakeup.wait(), self.interval)
            except TimeoutError:
                reason = "the CLI config changed" if self._fingerprint() != self._last else None
            else:
                self._wakeup.clear()
                reason = "SIGHUP"
            if reason is None:
                continue
            try:
                await self.redecide(reason)
            except Exception as exc:  # the watch must go on: the next change or SIGHUP decides again
                logger.error("telemetry could not be re-decided (%s): %s", reason, type(exc).__name__)

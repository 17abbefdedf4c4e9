"""`serve --workers N`: N forked server processes on one listening socket, each with its own lifespan (its own
forwarder, one consumer of the Redis queue's group), supervised by the parent."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import time
from collections.abc import Callable
from types import FrameType

logger = logging.getLogger("console_proxy")

# A worker that exits sooner than this after its start, unasked, is failing to start: stop them all rather
# than fork it again and again.
MIN_WORKER_LIFE_S = 2.0
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


PR_SET_PDEATHSIG = 1


def _die_with(parent: int) -> None:
    """Get SIGTERM when the supervisor dies (killed with -9, say), rather than serve on as an orphan."""
    with contextlib.suppress(OSError, AttributeError):  # Linux only: elsewhere a dead supervisor leaves orphans
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before prctl took effect
        os._exit(1)


class Supervisor:
    """Forks `count` workers running `work` (which returns an exit code), forks a new one when one dies unasked,
    passes SIGTERM/SIGINT (stop) and SIGHUP (reload the rules) on to all of them."""

    def __init__(self, count: int, work: Callable[[], int]) -> None:
        self._count = count
        self._work = work
        self._workers: dict[int, float] = {}
        self._stopping = False
        self._failed = False

    def run(self) -> int:
        """Until every worker has exited after a stop signal (0), or one failed to start (1)."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in FORWARDED_SIGNALS}
        try:
            for _ in range(self._count):
                self._fork()
            logger.info("serving with %d worker processes: %s", self._count, " ".join(map(str, self._workers)))
            while self._workers:
                pid, status = os.wait()
                started = self._workers.pop(pid, None)
                if started is None or self._stopping:
                    continue
                code = os.waitstatus_to_exitcode(status)
                if time.monotonic() - started < MIN_WORKER_LIFE_S:
                    logger.error("worker %d exited (%d) while starting; stopping the others", pid, code)
                    self._failed = True
                    self._signal_all(signal.SIGTERM)
                    self._stopping = True
                    continue
                logger.warning("worker %d exited (%d); starting another", pid, code)
                self._fork()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 1 if self._failed else 0

    def _fork(self) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            for sig in FORWARDED_SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
            _die_with(parent)
            code = 1
            try:
                code = self._work()
            finally:
                logging.shutdown()
                os._exit(code)
        self._workers[pid] = time.monotonic()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if signum != signal.SIGHUP:
            self._stopping = True
        self._signal_all(signal.SIGTERM if signum == signal.SIGINT else signum)

    def _signal_all(self, signum: int) -> None:
        for pid in list(self._workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

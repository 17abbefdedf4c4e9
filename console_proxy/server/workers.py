"""`serve --workers N`: uvicorn's own supervisor (`uvicorn.supervisors.Multiprocess`) over N worker processes on
one listening socket, each with its own lifespan (its own forwarder, one consumer of the Redis queue's group).

What uvicorn's supervisor gives: the socket bound once and handed to each worker; a worker that dies (`kill -9`
included) or stops answering its health check is replaced; SIGINT/SIGTERM stop them all; SIGHUP replaces them one
at a time, each new one loading the rules afresh and serving before the old one leaves (a new one that cannot
start leaves the old one serving); SIGTTIN/SIGTTOU add and remove a worker; a worker that fails to start stops the
whole server. It starts workers with multiprocessing's spawn, so the config is pickled: the app and the protocol
class are built in the worker, from `build`.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Callable

import uvicorn
from starlette.types import ASGIApp
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess

from console_proxy.core.metrics import MULTIPROCESS_ENV
from console_proxy.server.protocols import timed_protocol

logger = logging.getLogger("console_proxy")

PR_SET_PDEATHSIG = 1
WORKER_APP = "console-proxy worker"  # a placeholder: the worker builds its app in load()
# How long a worker may leave the supervisor's health check unanswered before it is killed as hung. uvicorn's 5 s
# is shorter than a worker's start (a fresh interpreter importing the package) on a loaded machine, which then
# killed workers that were only starting.
WORKER_HEALTHCHECK_S = 30


def _die_with(parent: int) -> None:
    """Get SIGTERM when the supervisor dies (killed with -9, say), rather than serve on as an orphan."""
    with contextlib.suppress(OSError, AttributeError):  # Linux only: elsewhere a dead supervisor leaves orphans
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before prctl took effect
        os._exit(1)


class WorkerConfig(uvicorn.Config):
    """uvicorn's config for the workers: `build()` (picklable: a module-level function or a partial of one) makes
    the app in each worker; the protocol class, made at run time, is made there too."""

    def __init__(self, build: Callable[[], ASGIApp], request_timeout_s: float, **options: object) -> None:
        options.setdefault("timeout_worker_healthcheck", WORKER_HEALTHCHECK_S)
        super().__init__(WORKER_APP, **options)  # type: ignore[arg-type]
        self._build = build
        self._request_timeout_s = request_timeout_s
        self._max_connections = self.limit_concurrency
        self._parent = os.getpid()

    def load(self) -> None:
        if not self.loaded:
            _die_with(self._parent)
            # SIGHUP is the supervisor's (replace the workers); a worker hit by a terminal's hangup serves on.
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            try:
                self.app = self._build()
            except SystemExit as exc:
                # A worker that cannot build its app (a rules file broken since the start) stops: uvicorn's
                # supervisor keeps the old workers, or stops the server at start.
                raise SystemExit(STARTUP_FAILURE) from exc
            self.http = timed_protocol(self._request_timeout_s, max_connections=self._max_connections)
        super().load()


class Supervisor(Multiprocess):
    """uvicorn's supervisor, saying which processes serve."""

    def init_processes(self) -> None:
        super().init_processes()
        logger.info(
            "serving with %d worker processes: %s", self.processes_num, " ".join(str(p.pid) for p in self.processes)
        )

    def failed(self) -> bool:
        return any(process.exitcode == STARTUP_FAILURE for process in self.processes)


def run_workers(config: WorkerConfig, sock: socket.socket) -> int:
    """Serve until stopped: 0, or 1 when a worker failed to start. Counters go to a directory of this run's, which
    every worker writes and any worker's /metrics reads (prometheus-client's multiprocess mode)."""
    directory = tempfile.mkdtemp(prefix="console-proxy-metrics-")
    os.environ[MULTIPROCESS_ENV] = directory  # inherited by the workers, which read it as they start
    try:
        supervisor = Supervisor(config, sockets=[sock])
        supervisor.run()
        return 1 if supervisor.failed() else 0
    finally:
        os.environ.pop(MULTIPROCESS_ENV, None)
        shutil.rmtree(directory, ignore_errors=True)

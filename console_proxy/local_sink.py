"""Local mode: accepted batches appended to a JSON-lines file, so a person can see what would be sent."""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

import anyio.to_thread

from console_proxy.sink import OutboundEvent, SinkRefused

LOCAL_EVENTS_FILE = "events.jsonl"
STATE_DIR_NAME = "console-proxy"

logger = logging.getLogger("console_proxy")


def resolve_state_dir(state_dir: Path | None, env: Mapping[str, str]) -> Path:
    """`state_dir`, or `$XDG_STATE_HOME/console-proxy`, or `~/.local/state/console-proxy`."""
    if state_dir is not None:
        return state_dir
    xdg = env.get("XDG_STATE_HOME")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / STATE_DIR_NAME
    home = env.get("HOME")
    base = Path(home) if home else Path.home()
    return base / ".local" / "state" / STATE_DIR_NAME


class LocalFileSink:
    """A `Sink` that appends each batch as one line `{"topic", "batch_id", "data": [events]}` and fsyncs it.

    Writes run in a worker thread so the event loop is never blocked; a lock keeps lines whole.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None
        self._lock = threading.Lock()

    async def start(self) -> None:
        await anyio.to_thread.run_sync(self._open)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            if self._file is None:
                self._file = open(self.path, "ab")  # noqa: SIM115 - kept open for the sink's life

    async def put(self, events: Sequence[OutboundEvent]) -> None:
        line = json.dumps(
            {"topic": "console", "batch_id": str(uuid.uuid4()), "data": list(events)},
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode("utf-8")
        await anyio.to_thread.run_sync(self._append, line + b"\n")

    def _append(self, line: bytes) -> None:
        with self._lock:
            if self._file is None:
                raise SinkRefused("the local event file is closed")
            try:
                self._file.write(line)
                self._file.flush()
                os.fsync(self._file.fileno())
            except OSError as exc:
                logger.error("cannot write the local event file: %s", exc.strerror)
                raise SinkRefused("the local event file is not writable") from None

    def ready(self) -> bool:
        return self._file is not None

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self._close)

    def _close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

"""The local file of unknown routes and action names (`serve --learn-unknown`, docs/design.md, "Local suggestions").

Raw routes that left as the unknown route and raw action names that left as the unknown token are kept, each
once, in `<state-dir>/unknowns.jsonl`: mode 0600, at most MAX_BYTES, for `console-proxy rules suggest` only.
Nothing here is ever put in an outbound event, the spool, the queue or /recent; it never leaves the machine.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Callable, Iterable
from pathlib import Path

FILE_NAME = "unknowns.jsonl"
# The file never grows past this; once full, new values are not kept (and not counted as kept).
MAX_BYTES = 1 << 20
# A longer raw value is not kept: no console route or action name is near it.
MAX_VALUE_CHARS = 512
KINDS = ("route", "action")

logger = logging.getLogger("console_proxy")


def unknowns_path(state_dir: Path) -> Path:
    return state_dir / FILE_NAME


def read_unknowns(path: Path) -> tuple[list[str], list[str]]:
    """The distinct raw routes and action names in the file, in the order first kept. A line that is not one
    of ours is skipped."""
    routes: dict[str, None] = {}
    actions: dict[str, None] = {}
    with path.open(encoding="utf-8", errors="replace") as file:
        for line in file:
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if not isinstance(item, dict) or len(item) != 1:
                continue
            (kind, value), *_ = item.items()
            if isinstance(value, str) and kind in KINDS:
                (routes if kind == "route" else actions)[value] = None
    return list(routes), list(actions)


class UnknownsFile:
    """Appends new raw values to the file, each once, until it holds MAX_BYTES. Writes are rare: a value is
    written only the first time this process sees it."""

    def __init__(self, path: Path, *, max_bytes: int = MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._seen: set[tuple[str, str]] = set()
        self._full = False
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.fchmod(fd, stat.S_IRUSR | stat.S_IWUSR)  # an older file with a wider mode is narrowed
        finally:
            os.close(fd)
        routes, actions = read_unknowns(path)
        self._seen.update(("route", r) for r in routes)
        self._seen.update(("action", a) for a in actions)

    def keep(self, kind: str, values: Iterable[str], counted: Callable[[str, int], None] | None = None) -> int:
        """Append the values not kept before; returns how many were written."""
        new = [v for v in values if len(v) <= MAX_VALUE_CHARS and (kind, v) not in self._seen]
        if not new or self._full:
            return 0
        written = 0
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            logger.warning("cannot keep unknown routes and action names in %s (%s)", self.path, exc.strerror)
            return 0
        try:
            size = os.fstat(fd).st_size
            for value in new:
                line = (json.dumps({kind: value}, ensure_ascii=True) + "\n").encode("ascii")
                if size + len(line) > self.max_bytes:
                    self._full = True
                    break
                os.write(fd, line)
                size += len(line)
                self._seen.add((kind, value))
                written += 1
        except OSError as exc:
            logger.warning("cannot keep unknown routes and action names in %s (%s)", self.path, exc.strerror)
        finally:
            os.close(fd)
        if written and counted is not None:
            counted(kind, written)
        return written

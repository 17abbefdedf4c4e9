"""The spool's side files, `-wal` and `-shm`, looked at before SQLite touches them.

SQLite maps `-shm` into memory. When that file cannot grow (made immutable, on a read-only mount) or shrinks under
it (truncated), the next access to the mapped pages kills the process with SIGBUS, before any error can be raised.
So before each use the spool asks `check()`: a side file that this process may no longer write, that another file
replaced, that vanished, or an `-shm` smaller than before, is reported here first (docs/delivery.md, "Storage
faults"). One `stat` and one `access` per file.
"""

from __future__ import annotations

import dataclasses
import enum
import os
from pathlib import Path

SUFFIXES = ("-wal", "-shm")


class Fault(enum.Enum):
    """What is wrong with a side file, in the order they are looked for."""

    SHRUNK = "shrunk"  # -shm is smaller than SQLite mapped it: any access may be SIGBUS, for good
    REPLACED = "replaced"  # deleted, or another file in its place: SQLite still writes the old one
    UNWRITABLE = "unwritable"  # immutable, read-only, or its mode forbids this user: -shm cannot grow


@dataclasses.dataclass
class _Seen:
    identity: tuple[int, int]
    size: int


class SideFiles:
    """The side files of the database at `path`, as they were when it was opened."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: dict[str, _Seen] = {}

    def side(self, suffix: str) -> Path:
        return self.path.with_name(self.path.name + suffix)

    def opened(self) -> None:
        """Remember the side files as SQLite opened them."""
        self._seen.clear()
        self.seen()

    def seen(self) -> None:
        """After a use: -shm may have grown, never shrunk."""
        for suffix in SUFFIXES:
            try:
                stat = os.stat(self.side(suffix))
            except OSError:
                continue
            before = self._seen.get(suffix)
            identity = (stat.st_dev, stat.st_ino)
            if before is None or before.identity == identity:
                self._seen[suffix] = _Seen(identity, max(stat.st_size, before.size if before else 0))

    def size_seen(self, suffix: str) -> int:
        seen = self._seen.get(suffix)
        return seen.size if seen is not None else 0

    def check(self) -> tuple[Fault, str] | None:
        """The first fault of a side file (and which file), or None when SQLite may use them."""
        for suffix in SUFFIXES:
            seen = self._seen.get(suffix)
            if seen is None:
                continue
            path = self.side(suffix)
            try:
                stat = os.stat(path)
            except FileNotFoundError:
                return Fault.REPLACED, suffix
            except OSError:
                return Fault.UNWRITABLE, suffix
            if (stat.st_dev, stat.st_ino) != seen.identity:
                return Fault.REPLACED, suffix
            if suffix == "-shm" and stat.st_size < seen.size:
                return Fault.SHRUNK, suffix
            if not os.access(path, os.W_OK):
                return Fault.UNWRITABLE, suffix
        return None

    def unwritable_before_open(self) -> str | None:
        """Before opening: a side file left there that this process cannot write (SQLite would map it anyway)."""
        for suffix in SUFFIXES:
            path = self.side(suffix)
            if path.exists() and not os.access(path, os.W_OK):
                return suffix
        return None

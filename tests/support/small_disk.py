"""Real storage faults for tests: a small filesystem that fills up, and files made unwritable.

`SmallDisk` is a tmpfs of a few MiB for a `console-proxy serve` to keep its state in. As root (CI runs the tests as
root) it is mounted at its path for the test; where mounting is refused it is mounted instead inside a user and mount
namespace of the serve process itself (`unshare --user --map-root-user --mount`), and the test reaches it through
`/proc/PID/root`. Either way the process writes to a real filesystem that really runs out of space.

`unwritable(path)` makes one file unwritable even for root: `chattr +i` where the filesystem allows it, else a
read-only bind mount of the file over itself.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

# Set to "namespace" to use the fallback even where mounting works (to try it).
MODE_VARIABLE = "SMALL_DISK_MODE"


def _run(*args: str) -> bool:
    return subprocess.run(list(args), capture_output=True).returncode == 0


class SmallDisk:
    """A tmpfs of `size` (as `mount -o size=` reads it) at `path`."""

    def __init__(self, path: Path, size: str) -> None:
        self.path = path
        self.size = size
        self.mounted = False
        self.pid: int | None = None

    def __enter__(self) -> SmallDisk:
        self.path.mkdir(parents=True, exist_ok=True)
        if os.environ.get(MODE_VARIABLE) != "namespace":
            self.mounted = _run("mount", "-t", "tmpfs", "-o", f"size={self.size},mode=0755", "tmpfs", str(self.path))
        if not self.mounted and shutil.which("unshare") is None:
            raise RuntimeError("cannot mount a tmpfs here, and unshare (util-linux) is missing for the fallback")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], check=True)
            self.mounted = False

    @property
    def how(self) -> str:
        return "a tmpfs mounted for the test" if self.mounted else "a tmpfs in the process's own mount namespace"

    def command(self, args: Sequence[str]) -> list[str]:
        """The command that runs `args` with the filesystem in place."""
        if self.mounted:
            return list(args)
        mount = f'mount -t tmpfs -o size={self.size} tmpfs {self.path} && exec "$@"'
        return ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", mount, "sh", *args]

    def started(self, pid: int) -> None:
        """The process that runs with it (for the namespace form, where the test sees it through /proc)."""
        self.pid = pid

    def view(self) -> Path:
        """Where the test reaches the filesystem."""
        if self.mounted:
            return self.path
        assert self.pid is not None, "started(pid) first"
        return Path(f"/proc/{self.pid}/root") / self.path.relative_to("/")

    def free_bytes(self) -> int:
        disk = os.statvfs(self.view())
        return disk.f_bavail * disk.f_frsize

    def fill(self, name: str = "filler") -> Path:
        """Write a file until the filesystem is full; returns it (delete it to give the space back)."""
        path = self.view() / name
        with open(path, "ab", buffering=0) as out:
            chunk = b"\0" * 65536
            while True:
                try:
                    out.write(chunk)
                except OSError:
                    if len(chunk) == 1:
                        break
                    chunk = chunk[: len(chunk) // 2]
        return path


@contextlib.contextmanager
def unwritable(path: Path) -> Iterator[str]:
    """`path` cannot be written, by root either, until the block ends; yields how ("immutable" or "read-only")."""
    if _run("chattr", "+i", str(path)):
        try:
            yield "immutable"
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        return
    if not (_run("mount", "--bind", str(path), str(path)) and _run("mount", "-o", "remount,bind,ro", str(path))):
        raise RuntimeError(f"cannot make {path} unwritable: neither chattr +i nor a read-only bind mount works here")
    try:
        yield "read-only"
    finally:
        subprocess.run(["umount", str(path)], check=True)

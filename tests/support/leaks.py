"""What a test leaves running: processes it started (even orphans of a dead parent) and threads.

Every process this test session starts inherits `TAG` in its environment (`clean_env` keeps it), so a
process is known as ours wherever it was re-parented to. Linux /proc only; elsewhere nothing is found.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import uuid
from pathlib import Path

TAG = "TESTS_CONSOLE_PROXY_SESSION"
_PROC = Path("/proc")


def tag_this_session() -> bytes:
    """Set the tag in os.environ (children inherit it) and return it as it reads in /proc/PID/environ."""
    os.environ.setdefault(TAG, f"{os.getpid()}-{uuid.uuid4().hex}")
    return f"{TAG}={os.environ[TAG]}".encode()


def pids() -> set[int]:
    try:
        return {int(name) for name in os.listdir(_PROC) if name.isdigit()}
    except OSError:
        return set()


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid), None when the process is gone."""
    try:
        fields = (_PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[1])


def _tagged(pid: int, marker: bytes) -> bool:
    try:
        return marker in (_PROC / str(pid) / "environ").read_bytes().split(b"\0")
    except OSError:
        return False


def describe(pid: int) -> str:
    try:
        args = (_PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        args = "?"
    stat = _stat(pid)
    return f"pid {pid} (ppid {stat[1] if stat else '?'}): {args.strip()[:300]}"


def running_since(before: set[int], marker: bytes) -> list[int]:
    """Live processes of this session started after `before` was taken, other than descendants of a process
    that was already there (a module's browser starts and stops its renderers as it likes)."""
    me = os.getpid()
    found = []
    for pid in sorted(pids() - before - {me}):
        stat = _stat(pid)
        if stat is None or stat[0] in ("Z", "X") or not _tagged(pid, marker):
            continue
        parent, hops = stat[1], 0
        while parent not in (0, 1, me) and parent not in before and hops < 64:
            up = _stat(parent)
            parent, hops = (up[1] if up else 0), hops + 1
        if parent in before and parent not in (0, 1, me):
            continue
        found.append(pid)
    return found


def wait_for_exit(before: set[int], marker: bytes, grace_s: float) -> list[int]:
    deadline = time.monotonic() + grace_s
    while True:
        left = running_since(before, marker)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def kill(found: list[int]) -> None:
    for pid in found:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def _idle_pool_worker(thread: threading.Thread) -> bool:
    # A thread of a ThreadPoolExecutor (an event loop's default executor: asyncio_0, ...) runs only what its
    # executor is given, and ends with it; a module-scoped loop (Playwright's) keeps its own for the module.
    target = getattr(thread, "_target", None)
    return getattr(target, "__module__", None) == "concurrent.futures.thread"


def threads_since(before: set[threading.Thread], grace_s: float) -> list[threading.Thread]:
    """Threads started since `before` was taken that still run after up to `grace_s` (pool workers aside)."""
    deadline = time.monotonic() + grace_s
    while True:
        left = [t for t in threading.enumerate() if t not in before and t.is_alive() and not _idle_pool_worker(t)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)

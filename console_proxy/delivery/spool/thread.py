"""The spool's one thread: every SQLite call runs on it, in order, and puts waiting together are handed over as one
group so that they share one transaction (one fsync)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import queue
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

# Puts waiting together are committed in one transaction (one fsync); this caps how many.
GROUP_COMMIT_MAX_PUTS = 256

R = TypeVar("R")
P = TypeVar("P")


@dataclasses.dataclass(frozen=True)
class Job(Generic[P]):
    """Work for the thread: a put (grouped with the puts waiting behind it), or any other call to run."""

    future: concurrent.futures.Future[Any]
    put: P | None = None
    run: Callable[[], Any] | None = None


def settle(future: concurrent.futures.Future[Any], result: Any = None, error: BaseException | None = None) -> None:
    """Resolve `future`; the waiting coroutine may have been cancelled meanwhile, and the work is done either way."""
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)


class SpoolThread(Generic[P]):
    """Runs jobs on one daemon thread. `put_group` gets each group of puts (their caller still waiting) and settles
    every future it is given; `on_exit` runs on the thread after the last job."""

    def __init__(self, name: str, *, put_group: Callable[[list[Job[P]]], None], on_exit: Callable[[], None]) -> None:
        self._name = name
        self._put_group = put_group
        self._on_exit = on_exit
        self._jobs: queue.Queue[Job[P] | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Finish the queued work, run `on_exit` and end the thread."""
        if self._thread is None:
            return
        self._jobs.put(None)
        await asyncio.to_thread(self._thread.join)
        self._thread = None

    async def call(self, run: Callable[[], R], *, closed: Callable[[], BaseException]) -> R:
        """`run()` on the thread, in order with every other job; raises `closed()` when the thread is not running."""
        result: R = await self._submit(Job(concurrent.futures.Future(), run=run), closed)
        return result

    async def put(self, put: P, *, closed: Callable[[], BaseException]) -> Any:
        """`put`, grouped with the puts waiting with it; what `put_group` settled its future with."""
        return await self._submit(Job(concurrent.futures.Future(), put=put), closed)

    async def _submit(self, job: Job[P], closed: Callable[[], BaseException]) -> Any:
        if self._thread is None:
            raise closed()
        self._jobs.put(job)
        return await asyncio.wrap_future(job.future)

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                break
            if job.put is not None:
                puts = [job]
                while len(puts) < GROUP_COMMIT_MAX_PUTS:
                    try:
                        nxt = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None or nxt.put is None:
                        self._jobs.put(nxt)  # handled after this group; order among non-puts is kept
                        break
                    puts.append(nxt)
                # A put whose caller is gone (cancelled) before it ran is not committed: no 202 was sent for it.
                puts = [put for put in puts if put.future.set_running_or_notify_cancel()]
                if puts:
                    self._put_group(puts)
                continue
            if not job.future.set_running_or_notify_cancel():
                continue
            assert job.run is not None
            try:
                settle(job.future, job.run())
            except Exception as exc:
                settle(job.future, error=exc)
        self._on_exit()

"""The background task that sends queued batches upstream: batching, retries with backoff, dead letters; and the
one decision on what a collector's answer means (`verdict`)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import email.utils
import enum
import logging
import random
import time
from collections.abc import Awaitable, Callable
from http.cookiejar import DefaultCookiePolicy

import httpx

from console_proxy._version import __version__
from console_proxy.core.accounting import parse_answer
from console_proxy.core.metrics import Metrics
from console_proxy.core.settings import Settings
from console_proxy.delivery.queue import Batch, Queue
from console_proxy.delivery.upstream_token import read_upstream_token

logger = logging.getLogger("console_proxy")

# How often events older than the maximum age are looked for, in seconds.
EXPIRE_EVERY_S = 60.0
RETRYABLE_STATUSES = frozenset({408, 429})
# The collector refused the gate's token (or wants one): an operator's fix, and the events are not at fault.
AUTH_STATUSES = frozenset({401, 403})
PAYLOAD_TOO_LARGE = 413
# A user agent of our own: nothing of the browser's request (IP, cookies, user agent) goes upstream.
USER_AGENT = f"console-proxy/{__version__}"

Sleep = Callable[[float], Awaitable[None]]
Jitter = Callable[[float, float], float]


class Verdict(enum.Enum):
    """What a collector's answer means for the batch it answered."""

    DELIVERED = "delivered"  # 2xx: the events leave the queue
    RETRY = "retry"  # network trouble, 408, 429, 5xx, a redirect: the same batch again, later
    SPLIT = "split"  # 413 for more than one event: each half again, as a batch of its own
    UNAUTHORIZED = "unauthorized"  # 401, 403: the token is wrong or missing; kept and sent again, said loudly
    DEAD_LETTER = "dead_letter"  # any other 4xx: kept aside, counted, never retried


def verdict(status: int, count: int) -> Verdict:
    """The one decision on a collector's answer `status` to a batch of `count` events (retries follow no redirect:
    a collector that moved is an operator's change to make, not the browser's data to send elsewhere)."""
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status < 400 or status >= 500 or status in RETRYABLE_STATUSES:
        return Verdict.RETRY
    if status in AUTH_STATUSES:
        return Verdict.UNAUTHORIZED
    if status == PAYLOAD_TOO_LARGE and count > 1:
        return Verdict.SPLIT
    return Verdict.DEAD_LETTER


@dataclasses.dataclass(frozen=True)
class Retry:
    """The batch must be sent again; not sooner than `after_s` when the collector said so."""

    after_s: float | None
    # What went wrong, for the log line that also says when the next attempt is; None: said already.
    why: str | None = "upstream attempt failed"


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # isdigit() alone admits ² and the like, which float() refuses
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def backoff_delay(attempt: int, *, base_s: float, cap_s: float, retry_after_s: float | None, jitter: Jitter) -> float:
    """Exponential backoff with full jitter, capped; never sooner than the collector's Retry-After (capped too)."""
    delay = jitter(0.0, min(cap_s, base_s * 2 ** min(attempt, 62)))
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, cap_s))
    return delay


async def stop_task(task: asyncio.Task[None], *, again_every_s: float = 0.5) -> None:
    """Cancel `task` and wait for its end, cancelling it again every `again_every_s` while it runs on.

    One cancel is not always enough: a cancel that lands while redis-py's asyncio client finishes a command can
    be lost (the command returns normally, the task's loop goes round), and a shutdown that awaited the task
    then hung for good, with the task still running. Raises what the task raised, other than its cancellation.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=again_every_s)
    with contextlib.suppress(asyncio.CancelledError):
        await task


class Forwarder:
    """Sends the queue's batches to `upstream` until stopped; events leave the queue only after a 2xx."""

    def __init__(
        self,
        queue: Queue,
        settings: Settings,
        *,
        metrics: Metrics | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
        jitter: Jitter | None = None,
    ) -> None:
        if settings.upstream is None:
            raise ValueError("a Forwarder needs settings.upstream")
        self._queue = queue
        self._upstream = settings.upstream
        self._settings = settings
        self._metrics = metrics
        self._transport = transport
        self._clock = clock
        self._sleep = sleep
        # A generator of its own: the process-wide one belongs to the embedder (and to test frameworks that seed it).
        self._jitter = jitter if jitter is not None else random.Random().uniform
        self._wakeup = asyncio.Event()
        self._round = asyncio.Event()  # set after each round of the forwarding task, for drain()
        self._flushing = False
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        # Read once, here: a file that went missing after the start-up check is a failed start, not a silent
        # public send.
        token_file = settings.upstream_token_file
        self._authorization = f"Bearer {read_upstream_token(token_file)}" if token_file is not None else None

    async def start(self) -> None:
        """Start the background task (from the lifespan; no connection is opened before there is a batch)."""
        self._flushing = False
        self._client = httpx.AsyncClient(
            transport=self._transport,
            timeout=httpx.Timeout(self._settings.upstream_timeout_s),
            headers={"User-Agent": USER_AGENT},
            trust_env=False,
            follow_redirects=False,
        )
        # No cookie is ever kept from a collector's answer, so none is ever sent back.
        self._client.cookies.jar.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        self._task = asyncio.create_task(self._run(), name="console-proxy-forwarder")

    def wake(self) -> None:
        """New events were queued."""
        self._wakeup.set()

    async def drain(self) -> None:
        """Send without waiting for full batches until the queue is empty (bound it with a timeout).

        Woken by the forwarding task after each round (a batch sent, refused or retried, or nothing left to
        send), never by a timer: what it waits for is the task's work, and tests drive the task's time."""
        self._flushing = True
        self._wakeup.set()
        while self._queue.depth > 0 and self._task is not None and not self._task.done():
            self._round.clear()
            round_done = asyncio.ensure_future(self._round.wait())
            try:
                await asyncio.wait({round_done, self._task}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                round_done.cancel()

    async def aclose(self) -> None:
        """Stop the task (a batch in flight stays claimed in the queue and is re-sent at the next start)."""
        if self._task is not None:
            await stop_task(self._task)
            self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _run(self) -> None:
        attempt = 0
        next_expiry = 0.0
        paused = False  # the queue failed: said once, until a round goes through again
        while True:
            try:
                if time.monotonic() >= next_expiry:
                    expired = await self._queue.expire()
                    if expired:
                        logger.warning("%d spooled events were older than the maximum age and expired", expired)
                    next_expiry = time.monotonic() + EXPIRE_EVERY_S
                batch = await self._next_batch()
                paused = False
                if batch is None:
                    continue
                retry = await self._attempt(batch)
                self._round.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the queue is unwritable or unreachable; keep trying, slowly
                # Said once per outage, and not at all when the queue said it is down itself.
                why = None if paused or not getattr(self._queue, "writable", True) else "forwarding paused"
                paused = True
                retry = Retry(after_s=None, why=f"{why}: {type(exc).__name__}: {exc}" if why else None)
                self._round.set()
            if retry is None:
                attempt = 0
                continue
            delay = backoff_delay(
                attempt,
                base_s=self._settings.retry_base_s,
                cap_s=self._settings.retry_cap_s,
                retry_after_s=retry.after_s,
                jitter=self._jitter,
            )
            attempt += 1
            if retry.why is not None:
                logger.warning("%s; will retry in %.2fs (attempt %d)", retry.why, delay, attempt + 1)
            if self._metrics is not None:
                self._metrics.retried()
            await self._sleep(delay)

    async def _next_batch(self) -> Batch | None:
        queue, limit = self._queue, self._settings.batch_max_events
        self._wakeup.clear()
        if queue.depth > queue.unclaimed:  # a claimed batch is waiting: a retry or a re-send after a restart
            return await queue.claim(limit)
        if queue.unclaimed == 0:
            self._round.set()  # nothing to send: a drain waiting on this round sees an empty queue
            await self._wait_for_wakeup(EXPIRE_EVERY_S)
            return None
        deadline = time.monotonic() + self._settings.batch_max_delay_s
        # A put (or another source of work) may claim the full batch itself while this waits: take it at once.
        while queue.unclaimed < limit and queue.depth <= queue.unclaimed and not self._flushing:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._wakeup.clear()
            await self._wait_for_wakeup(remaining)
        return await queue.claim(limit)

    async def _wait_for_wakeup(self, timeout: float) -> None:
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that lands as the event fires.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._wakeup.wait()

    async def _attempt(self, batch: Batch) -> Retry | None:
        """One POST. None when the batch is done with (2xx or dead-lettered), else when to try again."""
        assert self._client is not None
        headers = {"Content-Type": "application/json", "Idempotency-Key": batch.batch_id}
        if self._authorization is not None:
            headers["Authorization"] = self._authorization
        started = time.monotonic()
        deadline_s = self._settings.upstream_timeout_s
        try:
            # httpx's timeout bounds each connect, write and read; this bounds the whole attempt, so a collector
            # that answers one byte a second cannot hold the forwarder.
            async with asyncio.timeout(deadline_s):
                response = await self._client.post(self._upstream, content=batch.body, headers=headers)
        except TimeoutError:
            return Retry(
                after_s=None, why=f"upstream did not answer within {deadline_s:g}s for a batch of {batch.count} events"
            )
        except httpx.HTTPError as exc:
            return Retry(
                after_s=None, why=f"upstream unreachable ({type(exc).__name__}) for a batch of {batch.count} events"
            )
        if self._metrics is not None:
            self._metrics.observe_upstream(time.monotonic() - started, response.status_code)
        status = response.status_code
        decided = verdict(status, batch.count)
        if decided is Verdict.DELIVERED:
            answer = parse_answer(response.content, batch.batch_id)
            if answer is not None and answer.total != batch.count:
                logger.warning(
                    "the collector counted %d of a batch of %d %s events; the difference shows as a gap in status",
                    answer.total,
                    batch.count,
                    batch.topic,
                )
            # Counted in the queue, in the same transaction as the removal, and read at scrape.
            await self._queue.ack(batch.batch_id, answer)
            return None
        if decided is Verdict.UNAUTHORIZED:
            after = parse_retry_after(response.headers.get("retry-after"), self._clock())
            sent = (
                "the token of --upstream-token-file" if self._authorization else "no token (no --upstream-token-file)"
            )
            return Retry(
                after_s=after,
                why=f"UPSTREAM REFUSED THE GATE ({status}): sent {sent}; a batch of {batch.count} events stays queued "
                "until a token the collector takes is set and the gate restarted",
            )
        if decided is Verdict.RETRY:
            after = parse_retry_after(response.headers.get("retry-after"), self._clock())
            return Retry(after_s=after, why=f"upstream answered {status} for a batch of {batch.count} events")
        if decided is Verdict.SPLIT:
            await self._queue.split(batch.batch_id)
            logger.warning("upstream answered 413 for a batch of %d events; sending it in halves", batch.count)
            return None
        dead = await self._queue.dead_letter(batch.batch_id, status)
        logger.error("upstream refused a batch of %d events with %d; kept as dead letters", dead, status)
        return None

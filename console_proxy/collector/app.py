"""The collector's ASGI app: `POST /v1/batches`, the dashboard (`GET /`, its script and `GET /v1/dashboard`),
`/healthz` and `/readyz`. A plain ASGI class; the store is opened in the lifespan, never in `__init__`."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio.to_thread
from starlette.types import Receive, Scope, Send

from console_proxy.collector import ui
from console_proxy.collector.dashboard import DEFAULT_MIN_INSTALLATIONS, figures
from console_proxy.collector.dashboard_sql import read_aggregates
from console_proxy.collector.envelope import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_EVENTS, EnvelopeError, read_envelope
from console_proxy.collector.house import dumps
from console_proxy.collector.intake import take_in
from console_proxy.collector.responses import BodyTooLarge, Disconnected, read_body, refuse, respond
from console_proxy.collector.store import Answer, KeyReusedError, SqlStore, StoreUnavailableError, fingerprint
from console_proxy.collector.tokens import authorized
from console_proxy.collector.vocabulary import Vocabulary

DEFAULT_MAX_IN_FLIGHT = 32
DEFAULT_WINDOW_DAYS = 90
RETENTION_INTERVAL_S = 3600.0
# An Idempotency-Key's answer is kept this long: far longer than a gate retries one batch.
IDEMPOTENCY_KEEP = timedelta(days=7)
STORE_RETRY_AFTER_S = 2
_KEY = re.compile(rb"[\x21-\x7e]{1,255}")
# The page loads its own script and its own data, nothing else; the chart library needs inline styles.
PAGE_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self' data:; "
        b"style-src 'self' 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
]
_MEDIA = re.compile(rb"application/json\s*(;.*)?", re.IGNORECASE)

logger = logging.getLogger("console_proxy")


@dataclasses.dataclass(frozen=True)
class CollectorConfig:
    vocabulary: Vocabulary
    min_installations: int = DEFAULT_MIN_INSTALLATIONS
    tokens: tuple[bytes, ...] | None = None
    retention_days: int | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_events: int = DEFAULT_MAX_EVENTS
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    window_days: int = DEFAULT_WINDOW_DAYS


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp(now: datetime) -> str:
    return now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class CollectorApp:
    """`open_store` is called in the lifespan (in a thread); `clock` and `sleep` are passed in for tests."""

    def __init__(
        self,
        config: CollectorConfig,
        open_store: Callable[[], SqlStore],
        *,
        clock: Callable[[], datetime] = _now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config = config
        self._open_store = open_store
        self._clock = clock
        self._sleep = sleep
        self.store: SqlStore | None = None
        self._in_flight = 0
        self._keys: set[bytes] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # a WebSocket is not answered: uvicorn closes it
        path, method = scope["path"], scope["method"]
        if path == "/v1/batches":
            if method != "POST":
                await refuse(send, 405, "use POST", headers=[(b"allow", b"POST")])
                return
            await self._batch(scope, receive, send)
        elif method not in ("GET", "HEAD"):
            await refuse(send, 405, "use GET", headers=[(b"allow", b"GET, HEAD")])
        elif path == "/":
            await respond(send, 200, ui.page(), b"text/html; charset=utf-8", PAGE_HEADERS)
        elif path == "/" + ui.SCRIPT_FILE:
            script = ui.script()
            if script is None:
                await refuse(send, 404, "the dashboard's script is not built")
            else:
                await respond(send, 200, script, b"text/javascript; charset=utf-8", PAGE_HEADERS[1:])
        elif path == "/v1/dashboard":
            await self._dashboard(send)
        elif path == "/healthz":
            await respond(send, 200, b'{"ok":true}')
        elif path == "/readyz":
            ready = self.store is not None and await anyio.to_thread.run_sync(self.store.ping)
            await respond(send, 200 if ready else 503, b'{"ready":true}' if ready else b'{"ready":false}')
        else:
            await refuse(send, 404, "not found")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        try:
            self.store = await anyio.to_thread.run_sync(self._open_store)
            await self.expire()
        except StoreUnavailableError as exc:
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            return
        sweeper = asyncio.create_task(self._sweep())
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        store, self.store = self.store, None
        await anyio.to_thread.run_sync(store.close)
        await send({"type": "lifespan.shutdown.complete"})

    async def expire(self) -> dict[str, int]:
        """Delete what retention says is too old; the count per table."""
        assert self.store is not None
        now = self._clock()
        days = self.config.retention_days
        before = now - timedelta(days=days) if days is not None else None
        counts = await anyio.to_thread.run_sync(self.store.expire, before, now - IDEMPOTENCY_KEEP)
        if sum(counts.values()):
            logger.info("collector: retention removed %s rows", sum(counts.values()))
        return counts

    async def _sweep(self) -> None:
        while True:
            await self._sleep(RETENTION_INTERVAL_S)
            try:
                await self.expire()
            except StoreUnavailableError:
                logger.warning("collector: the retention sweep found the store unavailable; trying again later")

    async def _batch(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        tokens = self.config.tokens
        if tokens is not None and not authorized(headers.get(b"authorization"), tokens):
            await refuse(send, 401, "a valid bearer token is required", headers=[(b"www-authenticate", b"Bearer")])
            return
        if not _MEDIA.fullmatch(headers.get(b"content-type", b"")):
            await refuse(send, 415, "expected Content-Type: application/json")
            return
        key = headers.get(b"idempotency-key")
        if key is not None and not _KEY.fullmatch(key):
            await refuse(send, 400, "Idempotency-Key is not 1 to 255 visible ASCII characters")
            return
        if self.store is None:
            await refuse(send, 503, "starting or stopping", STORE_RETRY_AFTER_S)
            return
        if self._in_flight >= self.config.max_in_flight:
            await refuse(send, 429, "too many batches in flight", 1)
            return
        if key is not None and key in self._keys:
            await refuse(send, 409, "a batch with this Idempotency-Key is in flight", 1)
            return
        self._in_flight += 1
        if key is not None:
            self._keys.add(key)
        try:
            await self._take(receive, send, key.decode() if key is not None else None)
        finally:
            self._in_flight -= 1
            self._keys.discard(key or b"")

    async def _take(self, receive: Receive, send: Send, key: str | None) -> None:
        try:
            body = await read_body(receive, self.config.max_body_bytes)
            envelope = read_envelope(body, max_events=self.config.max_events)
        except BodyTooLarge:
            await refuse(send, 413, "body too large")
            return
        except Disconnected:
            return
        except EnvelopeError as exc:
            await refuse(send, exc.status, exc.error)
            return
        try:
            answer = await anyio.to_thread.run_sync(self._store_batch, envelope, body, key)
        except KeyReusedError:
            await refuse(send, 422, "this Idempotency-Key came before with another body")
            return
        except StoreUnavailableError:
            await refuse(send, 503, "the store is unavailable", STORE_RETRY_AFTER_S)
            return
        except Exception:  # never a 500: the gate keeps the batch and retries
            logger.exception("collector: a batch could not be stored")
            await refuse(send, 503, "the batch could not be stored", STORE_RETRY_AFTER_S)
            return
        replayed = [(b"idempotent-replayed", b"true")] if answer.replayed else []
        await respond(send, 200, answer.to_json(), headers=replayed)

    def _store_batch(self, envelope: Any, body: bytes, key: str | None) -> Answer:
        assert self.store is not None
        now = self._clock()
        days = self.config.retention_days
        oldest = now - timedelta(days=days) if days is not None else None
        intake = take_in(envelope, self.config.vocabulary, now=now, received_at=_stamp(now), oldest=oldest)
        return self.store.write_once(intake, envelope.batch_id, key, fingerprint(body), _stamp(now))

    async def _dashboard(self, send: Send) -> None:
        if self.store is None:
            await refuse(send, 503, "starting or stopping", STORE_RETRY_AFTER_S)
            return
        since = self._clock() - timedelta(days=self.config.window_days)
        try:
            aggregates = await anyio.to_thread.run_sync(read_aggregates, self.store, since)
        except StoreUnavailableError:
            await refuse(send, 503, "the store is unavailable", STORE_RETRY_AFTER_S)
            return
        except Exception:  # never a 500
            logger.exception("collector: the dashboard's figures could not be read")
            await refuse(send, 503, "the figures could not be read", STORE_RETRY_AFTER_S)
            return
        data = figures(aggregates, min_installations=self.config.min_installations, window_days=self.config.window_days)
        await respond(send, 200, dumps(data), headers=[(b"cache-control", b"no-store")])

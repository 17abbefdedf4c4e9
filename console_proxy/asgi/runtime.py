"""What the middleware runs between start-up and shutdown: the decision, the rules, identity and the sink."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import traceback
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from console_proxy import sources
from console_proxy.asgi.budgets import ClientBudget
from console_proxy.asgi.recent import RecentEvents
from console_proxy.asgi.rules_reload import RULES_POLL_INTERVAL_S, RulesReloader
from console_proxy.core.errors import BatchError, Refusal, SinkRefused
from console_proxy.core.metrics import Metrics
from console_proxy.core.settings import Settings, resolve_state_dir
from console_proxy.delivery.factory import make_sink
from console_proxy.delivery.sink import Sink
from console_proxy.hasura.cli_config import resolve_telemetry
from console_proxy.hasura.identity import IdentityProvider
from console_proxy.hasura.optout import TelemetryDecision
from console_proxy.resources import default_rules_path
from console_proxy.rules.route_rules import RulesHolder
from console_proxy.sources.base import Built, Context, Source, body_too_large

logger = logging.getLogger("console_proxy")

# The metric label of a batch refused because its client spent its budget (429).
OVER_BUDGET = "client_over_budget"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def log_unexpected(where: str, exc: BaseException) -> None:
    """Log an exception nobody raised on purpose: its type and frames only, as its message may quote the input."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    logger.error("unexpected %s while answering %s\n%s", type(exc).__name__, where, frames)


@dataclasses.dataclass(frozen=True)
class Ack:
    """The answer to a batch that was kept: how many events were accepted and how many were left out."""

    accepted: int
    dropped: int

    def body(self) -> bytes:
        return b'{"accepted":%d,"dropped":%d}' % (self.accepted, self.dropped)


class TelemetryRuntime:
    """The long-lived parts of a TelemetryMiddleware. Building one does no I/O; `start()`/`stop()` (or
    `async with runtime.running():`) do the work, from a lifespan.

    Given parts (`rules_holder`, `sink`, `identity`) are used instead of the ones built from `settings`;
    a given sink is still started and closed here. `env` defaults to `os.environ` at start.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        rules_holder: RulesHolder | None = None,
        sink: Sink | None = None,
        identity: IdentityProvider | None = None,
        env: Mapping[str, str] | None = None,
        decision: TelemetryDecision | None = None,
        clock: Callable[[], datetime] = _utc_now,
        rules_poll_s: float = RULES_POLL_INTERVAL_S,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.rules_holder = rules_holder
        self.sink = sink
        self.identity = identity
        self.decision = decision
        shared = settings.queue if settings.upstream is not None and settings.queue != "sqlite" else None
        self.recent = RecentEvents(redis_url=shared)
        # Set when a WebSocket upgrade for the console arrived as a plain HTTP request: the server this runs
        # under cannot serve WebSocket, so every event the console sends is lost.
        self.websocket_unavailable = False
        self.metrics = metrics if metrics is not None else Metrics()
        self.budget = ClientBudget(settings.client_rate, settings.client_burst, redis_url=shared)
        self.reloader: RulesReloader | None = None
        self._env = env
        self._clock = clock
        self._rules_poll_s = rules_poll_s
        self._tasks: list[asyncio.Task[Any]] = []
        self._started = False

    @property
    def started(self) -> bool:
        return self._started

    @property
    def enabled(self) -> bool:
        return self._started and self.decision is not None and self.decision.enabled

    @property
    def upload(self) -> bool:
        return self.enabled and self.settings.upstream is not None

    def ready(self) -> bool:
        """Started with rules loaded, WebSocket served as far as is known, and (when enabled) a sink that can
        take a batch."""
        if not self._started or self.rules_holder is None or self.websocket_unavailable:
            return False
        return not self.enabled or (self.sink is not None and self.sink.ready())

    def request_rules_reload(self) -> None:
        """Reload the rules soon (the SIGHUP handler); call from the event loop's thread."""
        if self.reloader is not None:
            self.reloader.request()

    async def start(self) -> None:
        """Decide, load the rules, start identity and the sink. Raises SettingsError or RulesError."""
        if self._started:
            return
        env = os.environ if self._env is None else self._env
        settings = self.settings
        if self.decision is None:
            self.decision = await asyncio.to_thread(resolve_telemetry, settings, env)
        if self.rules_holder is None:
            self.rules_holder = await asyncio.to_thread(RulesHolder, settings.rules, (settings.prefix,))
        held = self.rules_holder.path
        rules_path = Path(held) if held is not None else default_rules_path()
        try:
            self.reloader = RulesReloader(
                self.rules_holder, rules_path, interval=self._rules_poll_s, on_reload=self.metrics.rules_reloaded
            )
            self._tasks.append(asyncio.create_task(self.reloader.watch(), name="console-proxy rules"))
            if self.decision.enabled:
                await self._start_delivery(settings, self.decision, resolve_state_dir(settings.state_dir, env))
        except BaseException:
            await self._close()
            raise
        self._started = True

    async def _start_delivery(self, settings: Settings, decision: TelemetryDecision, state_dir: Path) -> None:
        if self.identity is None:
            self.identity = IdentityProvider(settings)
        if settings.mode == "cli":
            await asyncio.to_thread(self.identity.load_cli_identity)
        self._tasks.append(asyncio.create_task(self.identity.run(), name="console-proxy identity"))
        if self.sink is None:
            self.sink = make_sink(settings, decision, state_dir=state_dir, metrics=self.metrics)
        await self.sink.start()

    async def stop(self) -> None:
        """Stop background work and close the sink (it flushes within its grace)."""
        if not self._started:
            return
        self._started = False
        await self._close()

    async def _close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self.sink is not None:
            await self.sink.aclose()
        await self.budget.aclose()
        await self.recent.aclose()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[TelemetryRuntime]:
        """`start()` on entry and `stop()` on exit; entering an already started runtime does nothing."""
        if self._started:
            yield self
            return
        await self.start()
        try:
            yield self
        finally:
            await self.stop()

    async def ingest(self, source: Source, body: bytes, *, client: str | None = None) -> Ack:
        """The one way in for a batch, from any source and transport: parse, build, charge, count, keep.

        `body` is the batch as received; the transport checked its media type (the HTTP request's), and its size
        is checked here again, for a WebSocket message. `client` is whose budget the events are taken from
        (`budgets.client_key`; None: no budget applies). Returns the ack once every topic's batch is durable;
        raises BatchError or SinkRefused, already counted, for the caller to answer. A body that holds several
        topics is kept as one batch per topic; a refusal after the first topic was kept asks the client to send
        it all again (delivery is at least once).
        """
        assert self.sink is not None
        try:
            if len(body) > source.max_body_bytes:
                raise body_too_large()
            built = self._build(source, body)
        except BatchError as exc:
            self.metrics.rejected(exc.label, source.name)
            raise
        if built is None:
            # The code broke, not a rule: answered as invalid and logged, but not counted as refused.
            raise BatchError(400, "invalid batch", "invalid_batch")
        dropped = sum(built.dropped.values())
        if client is not None:
            # Every event the client sent counts, kept or dropped: dropping is work too.
            wait_s = await self.budget.take(client, built.accepted + dropped)
            if wait_s is not None:
                self.metrics.rejected(OVER_BUDGET, source.name)
                raise SinkRefused("too many events from this client", label=OVER_BUDGET, status=429, retry_after=wait_s)
        for reason, n in built.dropped.items():
            self.metrics.dropped(reason, n, source.name)
        for reason, n in built.fields_dropped.items():
            self.metrics.fields_dropped(reason, n, source.name)
        self.metrics.received(built.accepted + dropped, source.name)
        try:
            for topic, events in built.batches.items():
                await self.sink.put(topic, events)
                self.metrics.accepted(len(events), source.name)
                self.recent.extend(events, topic)
        except SinkRefused as exc:
            self.metrics.rejected(exc.label, source.name)
            raise
        return Ack(built.accepted, dropped)

    async def record_server_metrics(self, message: Mapping[str, Any]) -> Ack | None:
        """Keep one server metrics message, as the Hasura server sends it (`{"topic": "server_metrics_v2",
        "data": {...}}`), for a server or a sidecar that embeds the gate: what `POST /_telemetry/v1/server` does.

        Returns the Ack once it is durable, or None when telemetry is off (nothing kept). Raises BatchError
        for a message that is not one, SinkRefused when the sink cannot take it now.
        """
        return await self._record(sources.server.SOURCE, message)

    async def record_cli_command(
        self,
        command: str,
        *,
        is_error: bool,
        os_platform: str | None = None,
        os_arch: str | None = None,
        cli_version: str | None = None,
        server_version: str | None = None,
        test: bool = False,
    ) -> Ack | None:
        """Keep one CLI command's event, for a CLI that embeds the gate: what `POST /_telemetry/v1/cli` does.

        `command` is the command path and the flags set, as the Hasura CLI reports it
        ("hasura migrate apply --endpoint"); a whole command line is fine too, as only the known path
        and known flag names are kept. `test` files it under `cli_test`. Returns the Ack once it is durable,
        or None when telemetry is off (nothing kept).
        """
        message = {
            "topic": "cli_test" if test else "cli",
            "command": command,
            "is_error": is_error,
            "os_platform": os_platform,
            "os_arch": os_arch,
            "version": cli_version,
            "server_version": server_version,
        }
        return await self._record(sources.cli.SOURCE, message)

    async def _record(self, source: Source, message: Mapping[str, Any]) -> Ack | None:
        if not self.enabled:
            return None
        try:
            body = json.dumps(message, separators=(",", ":"), allow_nan=False).encode()
        except (TypeError, ValueError):
            self.metrics.rejected("invalid_json", source.name)
            raise BatchError(400, "invalid JSON", "invalid_json") from None

        return await self.ingest(source, body)

    def _build(self, source: Source, body: bytes) -> Built | None:
        assert self.rules_holder is not None and self.identity is not None
        context = Context(self.settings, self.rules_holder.rules, self.identity.current, now=self._clock())
        try:
            return source.build(body, context)
        except Refusal:
            raise
        except Exception as exc:
            log_unexpected("a batch", exc)
            return None

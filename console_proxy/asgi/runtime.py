"""What the middleware runs between start-up and shutdown: the decision, the rules, identity and the sink."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
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
from console_proxy.asgi.charging import OVER_BUDGET, charge_in_put, count_built, put_charged
from console_proxy.asgi.optout_reload import DecisionReloader
from console_proxy.asgi.recent import RecentEvents
from console_proxy.asgi.rules_reload import RULES_POLL_INTERVAL_S, RulesReloader
from console_proxy.core.errors import BatchError, ConsoleProxyError, Refusal, SinkRefused
from console_proxy.core.metrics import Metrics
from console_proxy.core.settings import Settings, resolve_state_dir
from console_proxy.delivery.factory import make_sink
from console_proxy.delivery.forwarding import ForwardingSink
from console_proxy.delivery.sink import Sink
from console_proxy.delivery.unknowns import UnknownsFile, unknowns_path
from console_proxy.hasura.cli_config import cli_config_fingerprint, cli_config_path, resolve_telemetry
from console_proxy.hasura.identity import IdentityProvider
from console_proxy.hasura.optout import CLI_CONFIG_KEY, TelemetryDecision, needs_cli_config
from console_proxy.resources import default_rules_path
from console_proxy.rules.route_rules import RulesHolder
from console_proxy.sources.base import Built, Context, Source, body_too_large

logger = logging.getLogger("console_proxy")

# The metric label of a batch refused because telemetry is on but its store could not be opened.
NO_STORE = "store_unavailable"


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
    a given sink is still started and closed here. `env` defaults to `os.environ` at start. `decision` is the
    decision at start (made from `settings` and `env` when None); where the CLI config can decide, it is made
    again on SIGHUP (`request_reload`) and when that file changes, and takes effect at once both ways.
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
        home: Path | None = None,
    ) -> None:
        self.settings = settings
        self.rules_holder = rules_holder
        self.sink = sink
        self._given_sink = sink is not None
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
        self.decision_reloader: DecisionReloader | None = None
        self._env = env
        self._home = home
        self._state_dir: Path | None = None
        self.unknowns: UnknownsFile | None = None  # serve --learn-unknown: the local file, never uploaded
        self._identity_task: asyncio.Task[None] | None = None
        self._switching: asyncio.Lock | None = None
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
        take a batch now."""
        if not self._started or self.rules_holder is None or self.websocket_unavailable:
            return False
        return not self.enabled or (self.sink is not None and self.sink.ready())

    def request_reload(self) -> None:
        """Reload the rules and decide again soon (the SIGHUP handler); call from the event loop's thread."""
        if self.reloader is not None:
            self.reloader.request()
        if self.decision_reloader is not None:
            self.decision_reloader.request()

    request_rules_reload = request_reload

    async def start(self) -> None:
        """Decide, load the rules, start identity and the sink. Raises SettingsError or RulesError."""
        if self._started:
            return
        env = os.environ if self._env is None else self._env
        settings = self.settings
        if self.decision is None:
            self.decision = await asyncio.to_thread(resolve_telemetry, settings, env, home=self._home)
        if self.rules_holder is None:
            self.rules_holder = await asyncio.to_thread(RulesHolder, settings.rules, (settings.prefix,))
        held = self.rules_holder.path
        rules_path = Path(held) if held is not None else default_rules_path()
        try:
            self.reloader = RulesReloader(
                self.rules_holder, rules_path, interval=self._rules_poll_s, on_reload=self.metrics.rules_reloaded
            )
            self._tasks.append(asyncio.create_task(self.reloader.watch(), name="console-proxy rules"))
            self._switching = asyncio.Lock()
            self._state_dir = resolve_state_dir(settings.state_dir, env)
            if settings.learn_unknown:
                self.unknowns = await asyncio.to_thread(UnknownsFile, unknowns_path(self._state_dir))
            if needs_cli_config(settings, env):
                self.decision_reloader = DecisionReloader(
                    functools.partial(resolve_telemetry, settings, env, home=self._home),
                    functools.partial(cli_config_fingerprint, settings, home=self._home),
                    self._apply_decision,
                    unreadable=self._unreadable_cli_config,
                    interval=self._rules_poll_s,
                )
                self._tasks.append(asyncio.create_task(self.decision_reloader.watch(), name="console-proxy opt-out"))
            if self.decision.enabled:
                await self._start_delivery(self.decision)
        except BaseException:
            await self._close()
            raise
        self._started = True

    async def _start_delivery(self, decision: TelemetryDecision) -> None:
        settings = self.settings
        assert self._state_dir is not None
        if self.identity is None:
            self.identity = IdentityProvider(settings, home=self._home)
        if settings.mode == "cli":
            await asyncio.to_thread(self.identity.load_cli_identity)
        self._identity_task = asyncio.create_task(self.identity.run(), name="console-proxy identity")
        if self.sink is None:
            self.sink = make_sink(settings, decision, state_dir=self._state_dir, metrics=self.metrics)
        await self.sink.start()

    async def _stop_delivery(self) -> None:
        """Telemetry turned off: the lookups stop, the forwarder stops sending at once (a batch in flight stays
        queued), and the store is closed; what it holds stays where it is until telemetry is on again."""
        if self._identity_task is not None:
            self._identity_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._identity_task
            self._identity_task = None
        if self.sink is not None:
            await self.sink.aclose(drain=False)
            if not self._given_sink:
                self.sink = None  # a new one when telemetry is on again

    def _unreadable_cli_config(self) -> TelemetryDecision:
        path = cli_config_path(self.settings, home=self._home)
        source = f"{CLI_CONFIG_KEY} unreadable (off until it reads well again) in {path}"
        return TelemetryDecision(False, source, setting="cli_config")

    async def _apply_decision(self, decision: TelemetryDecision, reason: str) -> None:
        """Take a decision made again while serving. Off takes effect before anything is stopped (the next request
        is answered 204); on, once the store is open again."""
        assert self._switching is not None
        async with self._switching:
            before = self.decision
            if not self._started or before is None:
                return
            if decision.enabled == before.enabled:
                self.decision = decision
                return
            if not decision.enabled:
                self.decision = decision
                logger.warning(
                    "telemetry: off, decided by %s (%s): nothing more is kept or sent; what is queued stays",
                    decision.source,
                    reason,
                )
                await self._stop_delivery()
                return
            try:
                await self._start_delivery(decision)
            except (ConsoleProxyError, OSError) as exc:
                logger.error("telemetry: on again (%s), but its store cannot be opened: %s", reason, exc)
            self.decision = decision
            logger.warning("telemetry: on again, decided by %s (%s)", decision.source, reason)

    async def stop(self) -> None:
        """Stop background work and close the sink (it flushes within its grace)."""
        if not self._started:
            return
        self._started = False
        await self._close()

    async def _close(self) -> None:
        if self._identity_task is not None:
            self._tasks.append(self._identity_task)
            self._identity_task = None
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

    async def charge(self, client: str | None, source: Source, events: int = 1) -> None:
        """Take `events` from `client`'s budget, at least one: an empty, invalid or refused message is work too.
        Raises SinkRefused (429, counted) when the budget is spent; `client` None: no budget applies."""
        if client is None:
            return
        wait_s = await self.budget.take(client, max(1, events))
        if wait_s is not None:
            self.metrics.rejected(OVER_BUDGET, source.name)
            raise SinkRefused("too many events from this client", label=OVER_BUDGET, status=429, retry_after=wait_s)

    async def ingest(self, source: Source, body: bytes, *, client: str | None = None) -> Ack | None:
        """The one way in for a batch, from any source and transport: parse, build, charge, count, keep.

        `body` is the batch as received; the transport checked its media type (the HTTP request's), and its size
        is checked here again, for a WebSocket message. `client` is whose budget the events are taken from
        (`budgets.client_key`; None: no budget applies). Returns the ack once every topic's batch is durable, or
        None when telemetry is off (nothing is read or kept); raises BatchError or SinkRefused, already counted,
        for the caller to answer. A body that holds several topics is kept as one batch per topic; a refusal after
        the first topic was kept asks the client to send it all again (delivery is at least once).
        """
        if not self.enabled:
            return None
        try:
            if len(body) > source.max_body_bytes:
                raise body_too_large()
            built = self._build(source, body)
        except BatchError as exc:
            await self.charge(client, source)
            self.metrics.rejected(exc.label, source.name)
            raise
        if built is None:
            # The code broke, not a rule: answered as invalid and logged, but not counted as refused.
            await self.charge(client, source)
            raise BatchError(400, "invalid batch", "invalid_batch")
        dropped = sum(built.dropped.values())
        # Every event the client sent counts, kept or dropped: dropping is work too. With the Redis queue and one
        # topic, the queue's put script takes it (one script, not two: docs/design.md, "Redis stream entries").
        sink = self.sink
        pending = charge_in_put(sink, self.budget, client, built, built.accepted + dropped)
        count = functools.partial(count_built, self.metrics, self.unknowns, source, built, dropped)
        if pending is None:
            await self.charge(client, source, built.accepted + dropped)
            count()
            sink = self.sink  # the one in place once the budget answered
        if not self.enabled:
            return None  # turned off while the budget was asked: nothing is kept from that moment
        try:
            if sink is None:
                raise SinkRefused("telemetry store is unavailable", label=NO_STORE, retry_after=5)
            for topic, events in built.batches.items():
                if pending is not None and isinstance(sink, ForwardingSink):
                    await put_charged(sink, topic, events, pending, self.budget, count)
                    pending = None
                else:
                    await sink.put(topic, events)
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
        context = Context(
            self.settings,
            self.rules_holder.rules,
            self.identity.current,
            now=self._clock(),
            learn=self.unknowns is not None,
        )
        try:
            return source.build(body, context)
        except Refusal:
            raise
        except Exception as exc:
            log_unexpected("a batch", exc)
            return None

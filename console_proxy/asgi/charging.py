"""A batch's charge to its client's budget, and what it held counted once it passed (asgi/runtime.py's ingest).

With the Redis queue, the budget is taken by the queue's put script, in the same script as the append
(docs/design.md, "Redis stream entries"); elsewhere by `ClientBudget.take` before the put.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from console_proxy.asgi.budgets import ClientBudget
from console_proxy.core.errors import SinkRefused
from console_proxy.core.events import OutboundEvent
from console_proxy.core.metrics import Metrics
from console_proxy.delivery.forwarding import ForwardingSink
from console_proxy.delivery.sink import Charge, Sink
from console_proxy.delivery.unknowns import UnknownsFile
from console_proxy.sources.base import Built, Source

# The metric label of a batch refused because its client spent its budget (429).
OVER_BUDGET = "client_over_budget"


def charge_in_put(
    sink: Sink | None, budget: ClientBudget, client: str | None, built: Built, events: int
) -> Charge | None:
    """The charge for the sink's put to take, when it can: a client, a queue that takes charges (Redis) where the
    budgets are kept, and one topic (one put). None: charge first (`TelemetryRuntime.charge`)."""
    if client is None or not isinstance(sink, ForwardingSink) or len(built.batches) != 1:
        return None
    if budget.redis_url is None or not sink.takes_charges(budget.redis_url):
        return None
    return budget.shared_charge(client, events)


async def put_charged(
    sink: ForwardingSink,
    topic: str,
    events: Sequence[OutboundEvent],
    charge: Charge,
    budget: ClientBudget,
    count: Callable[[], None],
) -> None:
    """Put the batch with its charge: SinkRefused 429 (`OVER_BUDGET`, nothing counted) when the budget is spent;
    `count()` once it passed, kept or refused by the queue (as when the budget is taken first)."""
    try:
        taken = await sink.put_charged(topic, events, charge)
    except SinkRefused:
        count()
        raise
    if not taken:
        wait_s = budget.wait_s(charge.cost)
        raise SinkRefused("too many events from this client", label=OVER_BUDGET, status=429, retry_after=wait_s)
    count()


def count_built(
    metrics: Metrics, unknowns_file: UnknownsFile | None, source: Source, built: Built, dropped: int
) -> None:
    """What a batch that passed its client's budget held: dropped events and fields, unknown names, received."""
    for reason, n in built.dropped.items():
        metrics.dropped(reason, n, source.name)
    for reason, n in built.fields_dropped.items():
        metrics.fields_dropped(reason, n, source.name)
    unknowns = built.unknowns
    if unknowns.actions:
        metrics.unknown_actions(unknowns.actions, source.name)
    if unknowns_file is not None and (unknowns.raw_routes or unknowns.raw_actions):
        unknowns_file.keep("route", sorted(unknowns.raw_routes or ()), metrics.learned)
        unknowns_file.keep("action", sorted(unknowns.raw_actions or ()), metrics.learned)
    metrics.received(built.accepted + dropped, source.name)

"""What every telemetry source is: a parser from one inbound body to outbound batches by topic. Pure, no I/O."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from console_proxy.core import strictjson
from console_proxy.core.errors import BatchError
from console_proxy.core.events import Identity, OutboundEvent, new_ids
from console_proxy.core.settings import Settings
from console_proxy.rules.sources import CliRules, ServerSchema

# The most any source takes in one body (or one WebSocket message).
MAX_BODY_BYTES = 65536
JSON_MEDIA_TYPES = frozenset({"application/json"})
# In a source's `media_types`: a request with no Content-Type header is accepted too.
NO_MEDIA_TYPE = ""


class Rules(Protocol):
    """What a source needs from the route rules (`console_proxy.rules.RouteRules`)."""

    @property
    def unknown(self) -> str: ...

    def anonymize(self, url: str) -> str: ...

    def classify_action(self, name: object) -> tuple[str, str | None]: ...

    @property
    def server(self) -> ServerSchema: ...

    @property
    def cli(self) -> CliRules: ...


@dataclasses.dataclass(frozen=True)
class Context:
    """Everything a source may attach to what it builds, read once per batch: never anything from the request."""

    settings: Settings
    rules: Rules
    identity: Identity
    now: datetime
    new_ids: Callable[[int], list[str]] = new_ids
    # Keep the raw routes and action names that leave as the unknown tokens (serve --learn-unknown), for the
    # operator's own file of suggestions only: never in an outbound event.
    learn: bool = False


@dataclasses.dataclass
class Unknowns:
    """What left as an unknown token: the count of events whose action name did, and, when collected, the raw
    action names and routes (docs/design.md, "Local suggestions")."""

    actions: int = 0
    raw_actions: set[str] | None = None
    raw_routes: set[str] | None = None

    @classmethod
    def collecting(cls) -> Unknowns:
        return cls(raw_actions=set(), raw_routes=set())


@dataclasses.dataclass
class Built:
    """The outbound events of one inbound body, by topic (each topic is kept as a batch of its own), and
    every event left out, by reason."""

    batches: dict[str, list[OutboundEvent]] = dataclasses.field(default_factory=dict)
    dropped: Counter[str] = dataclasses.field(default_factory=Counter)
    # Fields left out of events that were kept (the server's and the CLI's sources), by reason.
    fields_dropped: Counter[str] = dataclasses.field(default_factory=Counter)
    unknowns: Unknowns = dataclasses.field(default_factory=Unknowns)

    @property
    def accepted(self) -> int:
        return sum(len(events) for events in self.batches.values())


Build = Callable[[bytes, Context], Built]


@dataclasses.dataclass(frozen=True)
class Source:
    """One telemetry source: its name, which media types its HTTP endpoint takes, its body limit, its parser.

    `build` raises BatchError for a body refused as a whole; single bad events are dropped and counted.
    """

    name: str
    build: Build
    media_types: frozenset[str] = JSON_MEDIA_TYPES
    max_body_bytes: int = MAX_BODY_BYTES


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise ValueError("a key appears twice")
    return document


def strict_json(text: str) -> Any:
    """`json.loads` of standard JSON only: `NaN`, `Infinity`, `-Infinity` and an object with a key twice (which
    parsers read differently: first or last wins) are ValueError, as any other invalid JSON."""
    return strictjson.loads(text, _strict_stdlib)


def _strict_stdlib(text: str) -> Any:
    return json.loads(text, parse_constant=_no_constant, object_pairs_hook=_unique_keys)


def unsupported_media_type() -> BatchError:
    return BatchError(415, "unsupported media type", "unsupported_media_type")


def body_too_large() -> BatchError:
    return BatchError(413, "body too large", "body_too_large")


def check_media_type(content_type: str | None, accepted: frozenset[str]) -> None:
    """Accept a Content-Type whose media type (any parameters, any case) is one of `accepted`; else 415.

    No Content-Type at all passes only when `accepted` holds NO_MEDIA_TYPE.
    """
    if content_type is None:
        if NO_MEDIA_TYPE in accepted:
            return
        raise unsupported_media_type()
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in accepted:
        raise unsupported_media_type()


def decode_json(body: bytes) -> object:
    """One JSON document from a body (at most MAX_BODY_BYTES); BatchError (400) for anything else."""
    if not body:
        raise BatchError(400, "empty body", "empty_body")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BatchError(400, "invalid UTF-8", "invalid_utf8") from None
    try:
        return strict_json(text)
    except RecursionError:
        raise BatchError(400, "nesting too deep", "too_deep") from None
    except ValueError:
        # JSONDecodeError, NaN or Infinity, and an integer longer than Python's digit limit.
        raise BatchError(400, "invalid JSON", "invalid_json") from None

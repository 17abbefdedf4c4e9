"""What leaves the machine: the outbound events, the envelope they travel in, ids, timestamps and the strict
patterns every forwarded value is checked against. Pure, no I/O.

Each telemetry source (`console_proxy.sources`) builds its own outbound event type here, from `OutboundEvent`,
so that everything that may leave is written down in one file.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import NotRequired, TypedDict

from console_proxy.core import strictjson

CONSOLE_TOPIC = "console"
# Development builds of the console: kept apart from production data, in batches of their own.
CONSOLE_TEST_TOPIC = "console_test"
SERVER_METRICS_TOPIC = "server_metrics_v2"
CLI_TOPIC = "cli"

# An action name as the console's Redux store dispatches it; used with fullmatch.
ACTION_SHAPE = re.compile(r"[A-Za-z0-9_@/:.\- ]{1,128}")
# [0-9] rather than \d: \d would accept any Unicode digit.
VERSION_PATTERN = re.compile(r"v?[0-9]{1,4}\.[0-9]{1,4}\.[0-9]{1,4}(-[0-9A-Za-z.]{1,32})?")
UUID_PATTERN = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
MAX_VERSION_LENGTH = 64
# The CI names the Hasura server reports as `ci` (the constants of the ci-info library it uses, hasura/ci-info-hs,
# src/CI/Types.hs, with CI_ cut off); any other value is sent as "other".
CI_NAMES = frozenset(
    {
        "APPVEYOR",
        "AZURE_PIPELINES",
        "BAMBOO",
        "BITBUCKET",
        "BITRISE",
        "BUDDY",
        "BUILDKITE",
        "CIRCLE",
        "CIRRUS",
        "CODEBUILD",
        "CODESHIP",
        "DRONE",
        "DSARI",
        "GITLAB",
        "GOCD",
        "HUDSON",
        "JENKINS",
        "MAGNUM",
        "NETLIFY",
        "NEVERCODE",
        "SAIL",
        "SEMAPHORE",
        "SHIPPABLE",
        "SOLANO",
        "STRIDER",
        "TASKCLUSTER",
        "TEAMCITY",
        "TRAVIS",
        "UNKNOWN_VENDOR",
    }
)
CI_OTHER = "other"


def valid_version(value: object) -> str | None:
    """`value` when it is a string matching VERSION_PATTERN, else None."""
    if isinstance(value, str) and len(value) <= MAX_VERSION_LENGTH and VERSION_PATTERN.fullmatch(value):
        return value
    return None


def valid_uuid(value: object) -> str | None:
    """`value` in lower case when it is a canonical 8-4-4-4-12 hex UUID string, else None."""
    if isinstance(value, str) and UUID_PATTERN.fullmatch(value):
        return value.lower()
    return None


@dataclasses.dataclass(frozen=True)
class Identity:
    """What is attached to every outbound event; `None` means unknown and is sent as null."""

    server_uuid: str | None = None
    cli_uuid: str | None = None
    server_version: str | None = None


class OutboundEvent(TypedDict):
    """What every outbound event has, whatever its topic."""

    event_id: str
    timestamp: str


class ConsoleEvent(OutboundEvent):
    """One console event as forwarded under the topic `console` (docs/design.md, "What is forwarded")."""

    event_type: str
    url: str
    console_mode: str
    server_uuid: str | None
    cli_uuid: str | None
    server_version: str | None
    data: None
    # Only the newest console sends it, and only its four values pass (docs/consoles.md).
    console_type: NotRequired[str]


# The variant bits of RFC 9562 (10xx) over a random hex digit's two low bits.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def new_ids(n: int) -> list[str]:
    """`n` random UUIDs (version 4, as `uuid.uuid4()` makes them), from one `os.urandom` call for all of them."""
    h = os.urandom(16 * n).hex()
    ids = []
    for i in range(0, 32 * n, 32):
        # 4: the version digit; the variant's two bits over the random digit's two low ones.
        ids.append(
            f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-4{h[i + 13 : i + 16]}-"
            f"{_VARIANT[h[i + 16]]}{h[i + 17 : i + 20]}-{h[i + 20 : i + 32]}"
        )
    return ids


ServerMetrics = dict[str, int | dict[str, int]]


class ServerMetricsEvent(OutboundEvent):
    """One server report as forwarded under `server_metrics_v2` (docs/design.md, "What is forwarded"): counts only."""

    server_uuid: str | None
    server_version: str | None
    backend_type: str | None
    db_kind: str | None
    metrics: ServerMetrics
    # Only when the server sent one: a name of CI_NAMES, or "other".
    ci: NotRequired[str]


class CliEvent(OutboundEvent):
    """One CLI command as forwarded under `cli` (docs/design.md, "What is forwarded"): flag names, never values."""

    cli_uuid: str | None
    server_uuid: str | None
    command: str
    flags: list[str]
    is_error: bool | None
    os_platform: str | None
    os_arch: str | None
    cli_version: str | None
    server_version: str | None


def new_id() -> str:
    """A random UUID, for an event_id or a batch_id."""
    return new_ids(1)[0]


def format_timestamp(now: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and `Z`; a naive datetime is taken as UTC."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode_event(event: OutboundEvent) -> str:
    """One event as compact JSON, as it is stored and sent."""
    return strictjson.dumps_text(event)


def encode_events(events: Sequence[OutboundEvent]) -> list[tuple[str, int]]:
    """Each event as `encode_event` writes it, with its length in UTF-8 bytes."""
    encoded = []
    for event in events:
        data = strictjson.dumps(event)
        encoded.append((data.decode(), len(data)))
    return encoded


def encode_envelope(topic: str, batch_id: str, encoded_events: Iterable[str]) -> bytes:
    """The body of one upstream batch (and one line of the local file): `{"topic", "batch_id", "data": [...]}`.

    `encoded_events` are events as `encode_event` wrote them, so stored events are sent without re-parsing.
    """
    head = strictjson.dumps_text({"topic": topic, "batch_id": batch_id})[:-1]
    return f'{head},"data":[{",".join(encoded_events)}]}}'.encode()


def encode_batch(topic: str, batch_id: str, events: Sequence[OutboundEvent]) -> bytes:
    """`encode_envelope(topic, batch_id, map(encode_event, events))`, in one step."""
    return strictjson.dumps({"topic": topic, "batch_id": batch_id, "data": events})

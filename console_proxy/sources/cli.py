"""The Hasura CLI's command events (POST /_telemetry/v1/cli): which fields are kept. Pure, no I/O.

The CLI posts one message per command, its fields flat beside the topic (`cli`, or `cli_test` when
its version is not semver): `{"topic", "uuid", "server_uuid", "execution_id", "os_platform",
"os_arch", "version", "server_version", "command", "is_error", "error", "payload"}`; its first
releases nested the same fields under `data`. `command` is the command path followed by `--name`
for each flag that was set. `error` is the Go error value serialized as it is (SQL statements,
server URLs, file paths) and is never read, nor is `payload`. The CLI's UUIDs are never read: the
gate attaches its own.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime

from console_proxy.core.errors import BatchError
from console_proxy.core.events import CliEvent, Identity, OutboundEvent, format_timestamp
from console_proxy.rules.sources import CliRules
from console_proxy.sources.base import NO_MEDIA_TYPE, Built, Context, Source, decode_json
from console_proxy.sources.values import enumerated, release

CLI_TOPICS: Mapping[str, str] = {"cli": "cli", "cli_test": "cli_test"}
# What the CLI sends: its newest releases post with Go's net/http and no Content-Type at all.
# Annotated: sources/hasura_http.py reads it through an import cycle, where mypyc cannot infer it.
MEDIA_TYPES: frozenset[str] = frozenset({"application/json", "application/octet-stream", "text/plain", NO_MEDIA_TYPE})
MAX_BODY_BYTES = 65536
UNKNOWN_COMMAND = "UNKNOWN"
# Longer than any command path with all its flags: a longer `command` is not one.
MAX_COMMAND_LENGTH = 1024
# Fields that are read; every other field (error, payload, uuid, execution_id...) is dropped unread.
_READ = frozenset({"topic", "command", "is_error", "os_platform", "os_arch", "version", "server_version"})


class ShapeError(ValueError):
    """A message that is not a CLI event at all (the whole body is refused with 400)."""


@dataclasses.dataclass
class CliReport:
    """What is kept of one CLI event."""

    topic: str
    command: str = UNKNOWN_COMMAND
    flags: list[str] = dataclasses.field(default_factory=list)
    is_error: bool | None = None
    os_platform: str | None = None
    os_arch: str | None = None
    cli_version: str | None = None
    server_version: str | None = None
    # Every field or word left out, by reason; the event itself is kept.
    dropped_fields: Counter[str] = dataclasses.field(default_factory=Counter)


def parse_command(command: object, rules: CliRules, dropped: Counter[str]) -> tuple[str, list[str]]:
    """The known command path and the known names of the flags set, from a `command` as the CLI sends it
    ("hasura migrate apply --endpoint --version") or a command line; values and arguments are dropped.

    The path is the words before the first flag; it is kept only when the rules list it exactly,
    else it is UNKNOWN and no flag is kept.
    """
    if not isinstance(command, str) or len(command) > MAX_COMMAND_LENGTH:
        dropped["bad_command"] += 1
        return UNKNOWN_COMMAND, []
    words = command.split()
    cut = next((i for i, word in enumerate(words) if word.startswith("-")), len(words))
    path = " ".join(words[:cut])
    known = rules.commands.get(path)
    if known is None:
        dropped["unknown_command"] += 1
        return UNKNOWN_COMMAND, []
    flags: set[str] = set()
    for word in words[cut:]:
        if not word.startswith("-"):
            dropped["argument"] += 1  # a flag's value or a positional argument
        elif word.startswith("--") and word[2:].split("=", 1)[0] in known:
            flags.add(word[2:].split("=", 1)[0])
        else:  # unknown names, and short flags (the CLI itself sends long names only)
            dropped["unknown_flag"] += 1
    return path, sorted(flags)


def parse_cli(document: object, rules: CliRules) -> CliReport:
    """Keep what may leave of one decoded CLI event; raise ShapeError when it is not one."""
    if not isinstance(document, dict):
        raise ShapeError("not an object")
    topic = document.get("topic")
    if not isinstance(topic, str) or topic not in CLI_TOPICS:
        raise ShapeError("unknown topic")
    fields = document
    if "command" not in document and isinstance(document.get("data"), dict):
        fields = document["data"]  # the first releases: {"topic": "cli", "data": {...}}
    report = CliReport(topic=CLI_TOPICS[topic])
    dropped = report.dropped_fields
    report.command, report.flags = parse_command(fields.get("command"), rules, dropped)
    is_error = fields.get("is_error")
    if isinstance(is_error, bool):
        report.is_error = is_error
    elif is_error is not None:
        dropped["bad_is_error"] += 1
    report.os_platform = enumerated(fields.get("os_platform"), rules.platforms, "os_platform", dropped)
    report.os_arch = enumerated(fields.get("os_arch"), rules.architectures, "os_arch", dropped)
    report.cli_version = release(fields.get("version"), "cli_version", dropped)
    report.server_version = release(fields.get("server_version"), "server_version", dropped)
    unread = sum(1 for key in fields if key not in _READ)
    if fields is not document:
        unread += sum(1 for key in document if key not in ("topic", "data"))
    if unread:
        dropped["unread_field"] += unread
    return report


def build_cli_event(report: CliReport, identity: Identity, *, now: datetime, new_id: Callable[[], str]) -> CliEvent:
    """The outbound event of a kept CLI event, with the gate's own UUIDs (the gate's server version wins)."""
    return {
        "event_id": new_id(),
        "cli_uuid": identity.cli_uuid,
        "server_uuid": identity.server_uuid,
        "command": report.command,
        "flags": report.flags,
        "is_error": report.is_error,
        "os_platform": report.os_platform,
        "os_arch": report.os_arch,
        "cli_version": report.cli_version,
        "server_version": identity.server_version or report.server_version,
        "timestamp": format_timestamp(now),
    }


def build(body: bytes, context: Context) -> Built:
    """The CLI source's parser: one command event into a batch under its topic."""
    try:
        report = parse_cli(decode_json(body), context.rules.cli)
    except ShapeError:
        raise BatchError(400, "invalid CLI message", "bad_shape") from None
    event = build_cli_event(report, context.identity, now=context.now, new_id=lambda: context.new_ids(1)[0])
    events: list[OutboundEvent] = [event]
    return Built(batches={report.topic: events}, fields_dropped=report.dropped_fields)


SOURCE = Source(name="cli", build=build, media_types=MEDIA_TYPES, max_body_bytes=MAX_BODY_BYTES)

"""The `server` and `cli` sections of a rules file: which server counts and which CLI commands and flags may leave.

Both sections are optional. A file without `server` keeps no server count; a file without `cli`
knows no CLI command (every command is sent as the unknown token). Fail closed, as for routes.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from console_proxy.rules.located import Mark, Problems, YList, YMap, YScalar, YValue, describe

DEFAULT_MAX_COUNT = 100_000
# Any count above this is refused by the loader itself: a wider integer can carry a phone number.
MAX_MAX_COUNT = 10_000_000

_SERVER_KEYS = ("backends", "max_count", "metrics")
_CLI_KEYS = ("architectures", "commands", "flags", "platforms")

_METRIC_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}\Z")
_BACKEND_NAME = re.compile(r"[a-z0-9_]{1,64}\Z")
_FLAG_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}\Z")
_WORD = re.compile(r"[a-z0-9][a-z0-9-]{0,63}\Z")
_OS_NAME = re.compile(r"[a-z0-9_]{1,32}\Z")
CLI_ROOT = "hasura"


@dataclasses.dataclass(frozen=True)
class ServerSchema:
    """The counts a server report may carry: top-level `counts`, and `groups` of counts (relationships...)."""

    counts: frozenset[str] = frozenset()
    groups: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)
    backends: frozenset[str] = frozenset()
    max_count: int = DEFAULT_MAX_COUNT

    @property
    def metric_count(self) -> int:
        """How many integers a report may keep at most."""
        return len(self.counts) + sum(len(names) for names in self.groups.values())


@dataclasses.dataclass(frozen=True)
class CliRules:
    """The CLI's known command paths, each with every flag name it accepts (its own, its parents', global)."""

    commands: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)
    platforms: frozenset[str] = frozenset()
    architectures: frozenset[str] = frozenset()


def _keys(where: str, value: YMap, allowed: tuple[str, ...], problems: Problems) -> dict[str, YValue]:
    found: dict[str, YValue] = {}
    for key, item in value.items:
        if isinstance(key.value, str) and key.value in allowed:
            found[key.value] = item
        else:
            problems.add(key.mark, f"unknown key {key.value!r} in {where}; expected one of {', '.join(allowed)}")
    return found


def _names(what: str, value: YValue, pattern: re.Pattern[str], shape: str, problems: Problems) -> list[str]:
    """A list of unique names, each matching `pattern`; problems for everything else."""
    if not isinstance(value, YList):
        problems.add(value.mark, f"{what} is {describe(value)}; expected a list of {shape}")
        return []
    names: list[str] = []
    seen: dict[str, Mark] = {}
    for item in value.items:
        if not isinstance(item, YScalar) or not isinstance(item.value, str) or not pattern.match(item.value):
            problems.add(item.mark, f"an item of {what} is {describe(item)}; expected {shape}")
            continue
        first = seen.get(item.value)
        if first is not None:
            problems.add(item.mark, f"{item.value!r} is listed twice in {what} (first at line {first.line})")
            continue
        seen[item.value] = item.mark
        names.append(item.value)
    return names


def read_server(value: YValue, problems: Problems) -> ServerSchema:
    """Check and compile the `server` section."""
    if not isinstance(value, YMap):
        problems.add(value.mark, f"'server' is {describe(value)}; expected a mapping with 'metrics' and 'backends'")
        return ServerSchema()
    keys = _keys("'server'", value, _SERVER_KEYS, problems)
    max_count = DEFAULT_MAX_COUNT
    if "max_count" in keys:
        node = keys["max_count"]
        ok = isinstance(node, YScalar) and type(node.value) is int and 1 <= node.value <= MAX_MAX_COUNT
        if ok and isinstance(node, YScalar) and isinstance(node.value, int):
            max_count = node.value
        else:
            problems.add(
                node.mark, f"'max_count' is {describe(node)}; expected a whole number from 1 to {MAX_MAX_COUNT}"
            )
    counts: list[str] = []
    groups: dict[str, frozenset[str]] = {}
    if "metrics" in keys:
        counts, groups = _metrics(keys["metrics"], problems)
    backend = "a backend name (lower case letters, digits and _)"
    backends = _names("'backends'", keys["backends"], _BACKEND_NAME, backend, problems) if "backends" in keys else []
    return ServerSchema(frozenset(counts), groups, frozenset(backends), max_count)


def _metrics(value: YValue, problems: Problems) -> tuple[list[str], dict[str, frozenset[str]]]:
    expected = "a count name, or a mapping of one group name to a list of count names"
    if not isinstance(value, YList):
        problems.add(value.mark, f"'metrics' is {describe(value)}; expected a list, each item {expected}")
        return [], {}
    counts: list[str] = []
    groups: dict[str, frozenset[str]] = {}
    seen: dict[str, Mark] = {}

    def claim(name: str, mark: Mark) -> bool:
        first = seen.get(name)
        if first is not None:
            problems.add(mark, f"metric {name!r} is listed twice (first at line {first.line}); expected each once")
            return False
        if not _METRIC_NAME.match(name):
            problems.add(mark, f"metric name {name!r} is not lower case letters, digits and _; expected {expected}")
            return False
        seen[name] = mark
        return True

    for item in value.items:
        if isinstance(item, YScalar) and isinstance(item.value, str):
            if claim(item.value, item.mark):
                counts.append(item.value)
        elif isinstance(item, YMap) and len(item.items) == 1 and isinstance(item.items[0][0].value, str):
            key, members = item.items[0]
            assert isinstance(key.value, str)
            shape = "count names (lower case letters, digits and _)"
            names = _names(f"metric group {key.value!r}", members, _METRIC_NAME, shape, problems)
            if claim(key.value, key.mark):
                if isinstance(members, YList) and not members.items:
                    problems.add(members.mark, f"metric group {key.value!r} is empty; expected at least one count name")
                groups[key.value] = frozenset(names)
        else:
            problems.add(item.mark, f"an item of 'metrics' is {describe(item)}; expected {expected}")
    return counts, groups


def read_cli(value: YValue, problems: Problems) -> CliRules:
    """Check and compile the `cli` section; a command inherits the flags of every command above it."""
    if not isinstance(value, YMap):
        problems.add(value.mark, f"'cli' is {describe(value)}; expected a mapping with 'commands'")
        return CliRules()
    keys = _keys("'cli'", value, _CLI_KEYS, problems)
    flag = "a flag name without dashes (lower case letters, digits and -)"
    global_flags = _names("'flags'", keys["flags"], _FLAG_NAME, flag, problems) if "flags" in keys else []
    os_name = "an operating system or architecture name as Go spells it (linux, amd64...)"
    platforms = _names("'platforms'", keys["platforms"], _OS_NAME, os_name, problems) if "platforms" in keys else []
    arches = (
        _names("'architectures'", keys["architectures"], _OS_NAME, os_name, problems) if "architectures" in keys else []
    )
    own: dict[str, tuple[list[str], Mark]] = {}
    if "commands" in keys:
        own = _commands(keys["commands"], problems)
    commands: dict[str, frozenset[str]] = {}
    for path, (flags, mark) in own.items():
        words = path.split(" ")
        inherited = set(global_flags) | set(flags)
        for depth in range(1, len(words)):
            parent = " ".join(words[:depth])
            if parent not in own:
                problems.add(mark, f"command {path!r} has no parent {parent!r} in 'commands'; expected it listed too")
                break
            inherited.update(own[parent][0])
        commands[path] = frozenset(inherited)
    return CliRules(commands, frozenset(platforms), frozenset(arches))


def _commands(value: YValue, problems: Problems) -> dict[str, tuple[list[str], Mark]]:
    if not isinstance(value, YMap):
        problems.add(value.mark, f"'commands' is {describe(value)}; expected a mapping of command paths to flag lists")
        return {}
    found: dict[str, tuple[list[str], Mark]] = {}
    flag = "a flag name without dashes (lower case letters, digits and -)"
    for key, flags in value.items:
        path = key.value
        words = path.split(" ") if isinstance(path, str) else []
        if not words or words[0] != CLI_ROOT or not all(_WORD.match(w) for w in words[1:]):
            problems.add(key.mark, f"command {path!r} is not a command path; expected 'hasura' and lower case words")
            continue
        assert isinstance(path, str)
        if isinstance(flags, YScalar) and flags.value is None:
            names: list[str] = []
        else:
            names = _names(f"the flags of {path!r}", flags, _FLAG_NAME, flag, problems)
        found[path] = (names, key.mark)
    return found

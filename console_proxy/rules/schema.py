"""The shape of a rules file: which keys exist, what type each holds, and what is required.

This layer checks structure only; what a template or a glob means is checked when it is compiled
(rules_compile), so that every message about one file is gathered before the file is refused.
"""

from __future__ import annotations

import dataclasses

from console_proxy.rules.located import Mark, Problems, YList, YMap, YScalar, YValue, describe

SUPPORTED_VERSION = 1
DEFAULT_UNKNOWN = "/UNKNOWN"

_TOP_KEYS = ("actions", "cli", "prefixes", "routes", "server", "unknown", "version")
_ROUTE_KEYS = ("path", "query")
_ACTION_KEYS = ("allow", "drop", "shape", "unknown")


@dataclasses.dataclass(frozen=True)
class Text:
    """A string from the file and where its text starts."""

    text: str
    mark: Mark
    text_col: int

    def at(self, offset: int) -> Mark:
        """The position of the character at `offset` inside the string."""
        return Mark(self.mark.line, self.text_col + offset)


@dataclasses.dataclass(frozen=True)
class RouteSpec:
    path: Text
    query: tuple[tuple[Text, Text], ...]


@dataclasses.dataclass(frozen=True)
class RulesSpec:
    prefixes: tuple[Text, ...]
    unknown: Text | None
    routes: tuple[RouteSpec, ...]
    drop: tuple[Text, ...]
    allow: tuple[Text, ...] | None
    # The other sources' sections, checked by rules.sources.
    server: YValue | None = None
    cli: YValue | None = None
    shape: Text | None = None
    # `actions.unknown`: the token a name on no `allow` entry leaves as.
    action_unknown: Text | None = None


def _keys(where: str, value: YMap, allowed: tuple[str, ...], problems: Problems) -> dict[str, tuple[YScalar, YValue]]:
    found: dict[str, tuple[YScalar, YValue]] = {}
    for key, item in value.items:
        if isinstance(key.value, str) and key.value in allowed:
            found[key.value] = (key, item)
            continue
        hint = ""
        if where == "a route" and isinstance(key.value, str) and key.value.startswith("/"):
            hint = " (quote a template that contains ': ')"
        problems.add(key.mark, f"unknown key {key.value!r} in {where}; expected one of {', '.join(allowed)}{hint}")
    return found


def _text(what: str, value: YValue, problems: Problems) -> Text | None:
    if isinstance(value, YScalar) and isinstance(value.value, str):
        return Text(value.value, value.mark, value.text_col)
    problems.add(value.mark, f"{what} is {describe(value)}; expected a string")
    return None


def _texts(what: str, value: YValue, problems: Problems) -> tuple[Text, ...]:
    if not isinstance(value, YList):
        problems.add(value.mark, f"{what} is {describe(value)}; expected a list of strings")
        return ()
    texts = (_text(f"an item of {what}", item, problems) for item in value.items)
    return tuple(t for t in texts if t is not None)


def _route(item: YValue, problems: Problems) -> RouteSpec | None:
    if isinstance(item, YScalar):
        if not isinstance(item.value, str):
            problems.add(item.mark, f"a route is {describe(item)}; expected a template string or a mapping with 'path'")
            return None
        return RouteSpec(Text(item.value, item.mark, item.text_col), ())
    if not isinstance(item, YMap):
        problems.add(item.mark, f"a route is {describe(item)}; expected a template string or a mapping with 'path'")
        return None
    keys = _keys("a route", item, _ROUTE_KEYS, problems)
    if "path" not in keys:
        misread = any(isinstance(k.value, str) and k.value.startswith("/") for k, _ in item.items)
        if not misread:  # a template that YAML read as a mapping already has its message
            problems.add(item.mark, "a route mapping has no 'path'; expected 'path: /template'")
        return None
    path = _text("'path'", keys["path"][1], problems)
    query: list[tuple[Text, Text]] = []
    if "query" in keys:
        qvalue = keys["query"][1]
        if not isinstance(qvalue, YMap):
            problems.add(qvalue.mark, f"'query' is {describe(qvalue)}; expected a mapping of keys to placeholders")
        else:
            for qkey, qspec in qvalue.items:
                key = _text("a query key", qkey, problems)
                spec = _text(f"query key {qkey.value!r}", qspec, problems)
                if key is not None and spec is not None:
                    query.append((key, spec))
    return RouteSpec(path, tuple(query)) if path is not None else None


def read_spec(doc: YValue | None, problems: Problems) -> RulesSpec:
    """Check the structure of a parsed file; problems are collected, never raised."""
    empty = RulesSpec((), None, (), (), None)
    if doc is None:
        if not problems:
            problems.add(Mark(1, 1), "found an empty file; expected a mapping with 'version: 1' and 'routes'")
        return empty
    if not isinstance(doc, YMap):
        problems.add(doc.mark, f"the file is {describe(doc)}; expected a mapping with 'version: 1' and 'routes'")
        return empty
    keys = _keys("the top level", doc, _TOP_KEYS, problems)

    if "version" not in keys:
        problems.add(doc.mark, f"missing key 'version'; expected 'version: {SUPPORTED_VERSION}' at the top level")
    else:
        version = keys["version"][1]
        ok = isinstance(version, YScalar) and type(version.value) is int and version.value == SUPPORTED_VERSION
        if not ok:
            problems.add(version.mark, f"'version' is {describe(version)}; expected {SUPPORTED_VERSION}")

    routes: list[RouteSpec] = []
    if "routes" not in keys:
        problems.add(doc.mark, "missing key 'routes'; expected a list of route templates")
    else:
        value = keys["routes"][1]
        if not isinstance(value, YList) or not value.items:
            problems.add(value.mark, f"'routes' is {describe(value)}; expected a non-empty list of route templates")
        else:
            routes = [r for r in (_route(item, problems) for item in value.items) if r is not None]

    prefixes = _texts("'prefixes'", keys["prefixes"][1], problems) if "prefixes" in keys else ()
    unknown = _text("'unknown'", keys["unknown"][1], problems) if "unknown" in keys else None

    drop: tuple[Text, ...] = ()
    allow: tuple[Text, ...] | None = None
    shape: Text | None = None
    action_unknown: Text | None = None
    if "actions" in keys:
        actions = keys["actions"][1]
        if not isinstance(actions, YMap):
            problems.add(
                actions.mark,
                f"'actions' is {describe(actions)}; expected a mapping with 'shape', 'drop', 'allow' or 'unknown'",
            )
        else:
            akeys = _keys("'actions'", actions, _ACTION_KEYS, problems)
            drop = _texts("'drop'", akeys["drop"][1], problems) if "drop" in akeys else ()
            allow = _texts("'allow'", akeys["allow"][1], problems) if "allow" in akeys else None
            shape = _text("'shape'", akeys["shape"][1], problems) if "shape" in akeys else None
            if "unknown" in akeys:
                action_unknown = _text("'actions.unknown'", akeys["unknown"][1], problems)
    server = keys["server"][1] if "server" in keys else None
    cli = keys["cli"][1] if "cli" in keys else None
    return RulesSpec(prefixes, unknown, tuple(routes), drop, allow, server, cli, shape, action_unknown)

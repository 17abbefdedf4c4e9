"""Which anonymized routes the rules' templates can produce: the collector's check of a console event's `url`.

The gate turns a raw route into the literals of the template it matched, a placeholder for every other segment
(`SOURCE`, `TABLE`), a known value of an enumerated segment, and at most the query keys the template keeps, sorted,
each with a known value or its placeholder. So a route the gate sends is made of the template's own words, and
anything else (a database name, a row value, a stray segment) cannot be one. Pure, no I/O.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

MAX_ROUTE_LENGTH = 2048
CACHE_SIZE = 4096
_VARIABLE = re.compile(r"\{\s*([A-Z][A-Z0-9_]*)\s*(\*)?\s*(?::([^}]*))?\}\Z")


@dataclasses.dataclass
class _Node:
    """A position in the templates, as the gate's trie has it: literal children, at most one variable child (the
    rules allow one parameter per position), and templates that end here or with a tail here."""

    literals: dict[str, _Node] = dataclasses.field(default_factory=dict)
    var: _Node | None = None
    var_words: frozenset[str] = frozenset()
    tail_words: frozenset[str] = frozenset()
    # Per template that ends here (or with a tail here): each query key it keeps, and the values it may carry.
    ends: list[Mapping[str, frozenset[str]]] = dataclasses.field(default_factory=list)
    tail_ends: list[Mapping[str, frozenset[str]]] = dataclasses.field(default_factory=list)


def _words(spec: str) -> tuple[frozenset[str], bool] | None:
    """The output words of one template segment (or query value), and whether it is a tail; None for a literal."""
    found = _VARIABLE.match(spec.strip())
    if found is None:
        return None
    name, tail, values = found.group(1), found.group(2), found.group(3)
    words = {name}
    if values is not None:
        words.update(v.strip() for v in values.split("|"))
    return frozenset(words), tail is not None


def _query_ok(ends: list[Mapping[str, frozenset[str]]], pairs: list[tuple[str, str]]) -> bool:
    return any(all(k in q and v in q[k] for k, v in pairs) for q in ends)


class RouteShapes:
    """The set of anonymized routes some template can produce, plus the unknown token."""

    def __init__(self, templates: Iterable[tuple[str, Mapping[str, str]]], unknown: str) -> None:
        self.unknown = unknown
        self._root = _Node()
        for path, query in templates:
            self._add(path, query)
        # A gate sends the same few routes over and over; a bounded cache keeps their answers.
        self._cached: Callable[[str], bool] = functools.lru_cache(maxsize=CACHE_SIZE)(self._check)

    def _add(self, path: str, query: Mapping[str, str]) -> None:
        kept: dict[str, frozenset[str]] = {}
        for key, spec in query.items():
            words = _words(spec)
            if words is not None:
                kept[key] = words[0]
        node = self._root
        for segment in (s for s in path.split("/") if s):
            words = _words(segment)
            if words is None:
                node = node.literals.setdefault(segment, _Node())
            elif words[1]:
                node.tail_words |= words[0]
                node.tail_ends.append(kept)
                return
            else:
                if node.var is None:
                    node.var = _Node()
                node.var_words |= words[0]
                node = node.var
        node.ends.append(kept)

    def __contains__(self, route: object) -> bool:
        if not isinstance(route, str) or len(route) > MAX_ROUTE_LENGTH or not route.startswith("/"):
            return False
        return self._cached(route)

    def _check(self, route: str) -> bool:
        if route == self.unknown:
            return True
        path, mark, query = route.partition("?")
        if mark and not query:
            return False
        segments = path[1:].split("/") if path != "/" else []
        if "" in segments:
            return False
        pairs: list[tuple[str, str]] = []
        for part in query.split("&") if query else ():
            key, eq, value = part.partition("=")
            if not eq:
                return False
            pairs.append((key, value))
        keys = [k for k, _ in pairs]
        if keys != sorted(set(keys)):  # the gate writes each kept key once, sorted
            return False
        return self._match(self._root, segments, 0, pairs)

    def _match(self, node: _Node, segments: list[str], i: int, pairs: list[tuple[str, str]]) -> bool:
        if i == len(segments):
            return _query_ok(node.ends, pairs)
        segment = segments[i]
        child = node.literals.get(segment)
        if child is not None and self._match(child, segments, i + 1, pairs):
            return True
        if node.var is not None and segment in node.var_words and self._match(node.var, segments, i + 1, pairs):
            return True
        return i == len(segments) - 1 and segment in node.tail_words and _query_ok(node.tail_ends, pairs)


def templates_of(document: Any) -> list[tuple[str, Mapping[str, str]]]:
    """The (template, query) pairs of a rules document as YAML reads it; the file was already checked by
    `load_rules`, so what does not look like a route here is skipped."""
    found: list[tuple[str, Mapping[str, str]]] = []
    routes = document.get("routes") if isinstance(document, dict) else None
    for item in routes if isinstance(routes, list) else ():
        if isinstance(item, str):
            found.append((item, {}))
        elif isinstance(item, dict) and isinstance(item.get("path"), str):
            query = item.get("query")
            pairs = {str(k): str(v) for k, v in query.items()} if isinstance(query, dict) else {}
            found.append((item["path"], pairs))
    return found

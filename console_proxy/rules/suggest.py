"""Route templates and `allow` entries proposed from the raw values that left as unknown tokens. Pure, no I/O.

What a clusterer of transaction names learns centrally, done on the operator's machine (docs/design.md,
"Local suggestions"): the routes are put in a tree by segment; at each position, when more than MAX_LITERALS
distinct values were seen, or a value is not a plain word, those values become one parameter and the routes
below them are merged. A segment with more than MAX_LITERALS distinct values is never kept literal.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Sequence

# More distinct values than this at one position make it a parameter.
MAX_LITERALS = 3
# What may stay a literal: a lower-case word, such as "reports" or "access-log" (no digits: ids, dates and
# versions carry them; no upper case: names do).
_WORD = re.compile(r"[a-z][a-z_-]{0,31}\Z")
_PARAM_CHARS = re.compile(r"[^A-Z0-9_]")
DEFAULT_PARAMETER = "PARAM"

ParameterAt = Callable[[Sequence[str | None]], str | None]


class _Tree:
    __slots__ = ("children", "count", "ends")

    def __init__(self) -> None:
        self.children: dict[str, _Tree] = {}
        self.ends = 0
        self.count = 0

    def add(self, segs: Sequence[str]) -> None:
        node = self
        node.count += 1
        for seg in segs:
            node = node.children.setdefault(seg, _Tree())
            node.count += 1
        node.ends += 1

    def merge(self, other: _Tree) -> None:
        self.ends += other.ends
        self.count += other.count
        for seg, child in other.children.items():
            mine = self.children.get(seg)
            if mine is None:
                self.children[seg] = child
            else:
                mine.merge(child)


@dataclasses.dataclass(frozen=True)
class RouteSuggestion:
    """A proposed template, how many of the raw routes it covers, and how many distinct values each of its
    parameters stood for."""

    template: str
    routes: int
    distinct: tuple[tuple[str, int], ...]


def _parameter_name(previous: str | None) -> str:
    if previous is None:
        return DEFAULT_PARAMETER
    word = previous[:-1] if len(previous) > 3 and previous.endswith("s") and not previous.endswith("ss") else previous
    name = _PARAM_CHARS.sub("_", word.upper()).strip("_")
    return name if name[:1].isalpha() else DEFAULT_PARAMETER


def _unique(name: str, used: Sequence[str]) -> str:
    if name not in used:
        return name
    n = 2
    while f"{name}_{n}" in used:
        n += 1
    return f"{name}_{n}"


def _walk(
    node: _Tree,
    path: list[str | None],
    out: list[str],
    names: list[str],
    distinct: list[tuple[str, int]],
    existing: ParameterAt,
    found: list[RouteSuggestion],
) -> None:
    if node.ends:
        found.append(RouteSuggestion("/" + "/".join(out), node.ends, tuple(distinct)))
    literal = {seg: child for seg, child in node.children.items() if _WORD.match(seg)}
    if len(node.children) > MAX_LITERALS:
        literal = {}
    varying = [child for seg, child in node.children.items() if seg not in literal]
    for seg in sorted(literal):
        out.append(seg)
        path.append(seg)
        _walk(literal[seg], path, out, names, distinct, existing, found)
        out.pop()
        path.pop()
    if not varying:
        return
    merged = _Tree()
    for child in varying:
        merged.merge(child)
    previous = path[-1] if path else None  # None after a parameter
    name = existing(path) or _unique(_parameter_name(previous), names)
    out.append("{" + name + "}")
    path.append(None)
    names.append(name)
    distinct.append((name, len(varying)))
    _walk(merged, path, out, names, distinct, existing, found)
    distinct.pop()
    names.pop()
    path.pop()
    out.pop()


def suggest_routes(routes: Iterable[Sequence[str]], existing: ParameterAt | None = None) -> list[RouteSuggestion]:
    """Templates that cover `routes` (each given as its path segments, prefix stripped), most routes first.

    `existing(path)` names the parameter the rules in force already have after `path` (literals, None for a
    parameter), so that a proposal can be added to them; None when they have none.
    """
    tree = _Tree()
    for segs in routes:
        tree.add(segs)
    found: list[RouteSuggestion] = []
    _walk(tree, [], [], [], [], existing or (lambda path: None), found)
    found.sort(key=lambda s: (-s.routes, s.template))
    return found


def suggest_allow(names: Iterable[str], shape: re.Pattern[str], known: Callable[[str], bool]) -> list[str]:
    """The names of the right shape that the rules do not know yet, sorted; a name of another shape (an e-mail,
    free text) is never proposed."""
    return sorted({name for name in names if shape.fullmatch(name) is not None and not known(name)})

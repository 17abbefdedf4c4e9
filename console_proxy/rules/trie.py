"""Route templates compiled into a segment trie, and action globs compiled into one expression.

A trie node has a dict of literal children, at most one variable child (a parameter or an
enumerated segment) and at most one tail. Matching looks up the literal first and falls back to
the variable, then the tail, so its cost follows the route's segments, not the number of templates.
"""

from __future__ import annotations

import dataclasses
import re

from console_proxy.rules.located import Problems
from console_proxy.rules.schema import Text

_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,63}\Z")
# Literal segments and enumerated values are emitted as they are, so they are kept to URL-safe text.
_LITERAL = re.compile(r"[A-Za-z0-9._~@:+,;=!$&'()-]+\Z")
_QUERY_KEY = re.compile(r"[A-Za-z0-9_.\-]{1,64}\Z")
_UNKNOWN = re.compile(r"/[A-Z][A-Z0-9_]{0,63}\Z")
_GLOB = re.compile(r"[A-Za-z0-9_@/:.\- *?]{1,128}\Z")
_GLOB_CHAR = re.compile(r"[^A-Za-z0-9_@/:.\- *?]")
_NAME_HINT = "expected upper-case letters, digits and _ starting with a letter, such as TABLE"


@dataclasses.dataclass(frozen=True)
class Segment:
    kind: str  # "literal" | "param" | "enum" | "tail"
    text: str  # the literal, or the parameter name
    values: frozenset[str] | None = None

    def canonical(self) -> str:
        if self.kind == "literal":
            return self.text
        if self.kind == "tail":
            return "{" + self.text + "*}"
        if self.values is not None:
            return "{" + self.text + ":" + "|".join(sorted(self.values)) + "}"
        return "{" + self.text + "}"


@dataclasses.dataclass(frozen=True)
class QueryRule:
    name: str
    values: frozenset[str] | None


@dataclasses.dataclass(frozen=True)
class Terminal:
    template: str
    line: int
    query: dict[str, QueryRule]


class Node:
    __slots__ = ("literals", "tail", "tail_name", "terminal", "var", "var_name", "var_origin", "var_values")

    def __init__(self) -> None:
        self.literals: dict[str, Node] = {}
        self.var: Node | None = None
        self.var_name = ""
        self.var_values: frozenset[str] | None = None
        self.var_origin: tuple[str, int] = ("", 0)
        self.tail: Terminal | None = None
        self.tail_name = ""
        self.terminal: Terminal | None = None


def _variable(inner: str, where: Text, offset: int, problems: Problems) -> Segment | None:
    name, colon, rest = inner.partition(":")
    name = name.strip()
    tail = not colon and name.endswith("*")
    if tail:
        name = name[:-1].strip()
    if not _NAME.match(name):
        problems.add(where.at(offset), f"parameter name {name!r} is not valid; {_NAME_HINT}")
        return None
    if tail:
        return Segment("tail", name)
    if not colon:
        return Segment("param", name)
    values = [v.strip() for v in rest.split("|")]
    bad = [v for v in values if not _LITERAL.match(v)]
    if bad:
        problems.add(
            where.at(offset),
            f"enumerated value {bad[0]!r} of {{{name}}} is not valid; expected literals such as browse|modify",
        )
        return None
    if len(set(values)) != len(values):
        problems.add(where.at(offset), f"{{{name}}} lists a value twice; expected each enumerated value once")
        return None
    return Segment("enum", name, frozenset(values))


def parse_template(where: Text, problems: Problems) -> list[Segment] | None:
    """Split a template into segments; None (and a problem) when it is not valid."""
    text = where.text
    if not text.startswith("/"):
        problems.add(where.at(0), f"template {text!r} does not start with '/'; expected a path such as /data/{{DB}}")
        return None
    if text == "/":
        return []
    segments: list[Segment] = []
    offset = 1
    raw_parts = text[1:].split("/")
    for index, raw in enumerate(raw_parts):
        segment: Segment | None
        if raw == "":
            problems.add(where.at(offset), f"template {text!r} has an empty segment; expected no '//' or trailing '/'")
            return None
        if raw.startswith("{") and raw.endswith("}") and raw.count("{") == 1 and raw.count("}") == 1:
            segment = _variable(raw[1:-1], where, offset, problems)
            if segment is not None and segment.kind == "tail" and index != len(raw_parts) - 1:
                problems.add(where.at(offset), f"tail {raw!r} is not the last segment; expected it at the end only")
                segment = None
        elif "{" in raw or "}" in raw:
            problems.add(where.at(offset), f"segment {raw!r} mixes text and braces; expected a literal or one {{NAME}}")
            segment = None
        elif not _LITERAL.match(raw):
            bad = next(c for c in raw if not _LITERAL.match(c))
            problems.add(
                where.at(offset),
                f"segment {raw!r} has {bad!r}; expected a literal of letters, digits and"
                " . _ ~ - @ : (percent-encoding in routes is undone before matching)",
            )
            segment = None
        else:
            segment = Segment("literal", raw)
        if segment is None:
            return None
        segments.append(segment)
        offset += len(raw) + 1
    return segments


def _query_rules(specs: tuple[tuple[Text, Text], ...], problems: Problems) -> dict[str, QueryRule] | None:
    rules: dict[str, QueryRule] = {}
    ok = True
    for key, spec in specs:
        if not _QUERY_KEY.match(key.text):
            problems.add(key.mark, f"query key {key.text!r} is not valid; expected letters, digits and . _ -")
            ok = False
            continue
        value = spec.text.strip()
        segment = None
        if value.startswith("{") and value.endswith("}") and value.count("{") == 1:
            segment = _variable(value[1:-1], spec, 0, problems)
            if segment is None:
                ok = False
                continue
        if segment is None or segment.kind == "tail":
            problems.add(
                spec.mark,
                f"query key {key.text!r} maps to {spec.text!r}; expected a placeholder such as "
                "'{SOURCE}' or an enumeration such as '{DRIVER: postgres|mssql}'",
            )
            ok = False
            continue
        rules[key.text] = QueryRule(segment.text, segment.values)
    return rules if ok else None


def add_route(
    root: Node, path: Text, segments: list[Segment], query: tuple[tuple[Text, Text], ...], problems: Problems
) -> bool:
    """Insert one template; a duplicate or ambiguous template is a problem and is not inserted."""
    rules = _query_rules(query, problems)
    if rules is None:
        return False
    terminal = Terminal(path.text, path.mark.line, rules)
    node = root
    for segment in segments:
        if segment.kind == "literal":
            node = node.literals.setdefault(segment.text, Node())
        elif segment.kind == "tail":
            if node.tail is not None:
                what = "repeats" if node.tail_name == segment.text else "is ambiguous with"
                problems.add(
                    path.mark,
                    f"template {path.text!r} {what} line {node.tail.line}"
                    f" ({node.tail.template!r}); expected each route to have one template",
                )
                return False
            node.tail, node.tail_name = terminal, segment.text
            return True
        else:
            if node.var is None:
                node.var, node.var_name, node.var_values = Node(), segment.text, segment.values
                node.var_origin = (path.text, path.mark.line)
            elif node.var_name != segment.text or node.var_values != segment.values:
                mine = segment.canonical()
                theirs = Segment(segment.kind, node.var_name, node.var_values).canonical()
                template, line = node.var_origin
                problems.add(
                    path.mark,
                    f"template {path.text!r} has {mine} where line {line} ({template!r}) has"
                    f" {theirs} at the same position; expected one parameter per position",
                )
                return False
            node = node.var
    if node.terminal is not None:
        problems.add(
            path.mark,
            f"template {path.text!r} repeats line {node.terminal.line}"
            f" ({node.terminal.template!r}); expected each template once",
        )
        return False
    node.terminal = terminal
    return True


def walk(node: Node, segs: list[str], i: int, out: list[str]) -> Terminal | None:
    """Match `segs[i:]` below `node`, literal first, then the variable, then the tail; `out` gets the output."""
    if i == len(segs):
        return node.terminal
    seg = segs[i]
    child = node.literals.get(seg)
    if child is not None:
        out.append(seg)
        found = walk(child, segs, i + 1, out)
        if found is not None:
            return found
        del out[i:]
    child = node.var
    if child is not None:
        values = node.var_values
        out.append(seg if values is not None and seg in values else node.var_name)
        found = walk(child, segs, i + 1, out)
        if found is not None:
            return found
        del out[i:]
    if node.tail is not None:
        out.append(node.tail_name)
        return node.tail
    return None


def prefix_segments(prefix: Text, problems: Problems) -> tuple[str, ...] | None:
    parts = tuple(p for p in prefix.text.split("/") if p)
    if not prefix.text.startswith("/") or not parts or any(not _LITERAL.match(p) for p in parts):
        problems.add(
            prefix.mark,
            f"prefix {prefix.text!r} is not valid; expected leading path segments such as /console or /hasura/console",
        )
        return None
    return parts


def unknown_token(value: Text, problems: Problems) -> str | None:
    if not _UNKNOWN.match(value.text):
        problems.add(value.mark, f"'unknown' is {value.text!r}; expected one upper-case segment such as /UNKNOWN")
        return None
    return value.text


def compile_shape(shape: Text, problems: Problems) -> re.Pattern[str] | None:
    """The action-name shape, a regular expression that must match a whole name; None (and a problem) if bad."""
    if not shape.text:
        problems.add(shape.mark, "'shape' is empty; expected a regular expression such as '[A-Z][A-Z0-9_]*'")
        return None
    try:
        return re.compile(shape.text)
    except re.error as exc:
        pos = exc.pos or 0
        problems.add(
            shape.at(pos),
            f"'shape' {shape.text!r} is not a regular expression ({exc.msg} at position {pos});"
            " expected one such as '[A-Z][A-Z0-9_]*'",
        )
        return None


def compile_globs(globs: tuple[Text, ...], problems: Problems) -> tuple[frozenset[str], re.Pattern[str] | None]:
    """Exact names go to a set, wildcard globs to one anchored expression (None when there are none)."""
    exact: set[str] = set()
    patterns: list[str] = []
    for glob in globs:
        if not _GLOB.match(glob.text):
            bad = _GLOB_CHAR.search(glob.text)
            found = f"has {bad.group()!r}" if bad else f"is {len(glob.text)} characters long"
            problems.add(
                glob.mark,
                f"glob {glob.text!r} {found}; expected 1 to 128 letters, digits, _ @ / : . -"
                " or spaces and the wildcards * and ?",
            )
            continue
        if "*" not in glob.text and "?" not in glob.text:
            exact.add(glob.text)
            continue
        patterns.append("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob.text))
    regex = re.compile("(?:" + "|".join(patterns) + r")\Z") if patterns else None
    return frozenset(exact), regex

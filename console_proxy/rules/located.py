"""Read a rules file into located values: every scalar, list and mapping keeps its 1-based line and column.

PyYAML's composer gives node marks; we build our own small tree from the nodes instead of letting
PyYAML construct Python objects, so that duplicate keys can be refused (PyYAML keeps the last one
silently) and every later validation message can point at the exact place in the file.
"""

from __future__ import annotations

import dataclasses

import yaml
import yaml.constructor
import yaml.nodes

Scalar = str | int | float | bool | None

_STR_TAG = "tag:yaml.org,2002:str"
_PLAIN_TAGS = {
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
}


@dataclasses.dataclass(frozen=True)
class Mark:
    """A 1-based position in the file."""

    line: int
    col: int


@dataclasses.dataclass(frozen=True)
class YScalar:
    value: Scalar
    mark: Mark
    # Column where the text of a string starts (after an opening quote), so that a message about a
    # character inside a template can point at that character.
    text_col: int


@dataclasses.dataclass(frozen=True)
class YList:
    items: tuple[YValue, ...]
    mark: Mark


@dataclasses.dataclass(frozen=True)
class YMap:
    items: tuple[tuple[YScalar, YValue], ...]
    mark: Mark


YValue = YScalar | YList | YMap


class Problems:
    """Collects every problem of a file so that it is refused once, with all its messages."""

    def __init__(self) -> None:
        self._items: list[tuple[int, int, str]] = []

    def add(self, mark: Mark, message: str) -> None:
        self._items.append((mark.line, mark.col, message))

    def __bool__(self) -> bool:
        return bool(self._items)

    def lines(self, filename: str) -> list[str]:
        return [f"{filename}:{line}:{col}: {msg}" for line, col, msg in sorted(self._items)]


def _mark(node: yaml.nodes.Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


def describe(value: YValue) -> str:
    """How a value reads in a message: "a string", "a list"..."""
    if isinstance(value, YMap):
        return "a mapping"
    if isinstance(value, YList):
        return "a list"
    v = value.value
    if v is None:
        return "empty (null)"
    if isinstance(v, bool):
        return f"a boolean ({str(v).lower()})"
    if isinstance(v, int | float):
        return f"a number ({v})"
    return f"a string ({v!r})"


class _Builder:
    def __init__(self, problems: Problems) -> None:
        self.problems = problems
        self.constructor = yaml.constructor.SafeConstructor()
        # An alias is the same node object: building it once keeps nested aliases ("billion laughs") cheap.
        self.built: dict[int, YValue] = {}
        self.building: set[int] = set()

    def value(self, node: yaml.nodes.Node) -> YValue:
        found = self.built.get(id(node))
        if found is not None:
            return found
        if id(node) in self.building:
            self.problems.add(_mark(node), "found an alias inside its own anchor; expected a value that ends")
            return YScalar(None, _mark(node), _mark(node).col)
        self.building.add(id(node))
        value: YValue
        if isinstance(node, yaml.nodes.MappingNode):
            value = self.mapping(node)
        elif isinstance(node, yaml.nodes.SequenceNode):
            value = YList(tuple(self.value(item) for item in node.value), _mark(node))
        else:
            value = self.scalar(node)
        self.built[id(node)] = value
        return value

    def scalar(self, node: yaml.nodes.Node) -> YScalar:
        mark = _mark(node)
        style = getattr(node, "style", None)
        text_col = mark.col + (1 if style in ("'", '"') else 0)
        if node.tag == _STR_TAG:
            return YScalar(str(node.value), mark, text_col)
        if node.tag in _PLAIN_TAGS:
            value = self.constructor.construct_object(node, deep=True)
            if value is None or isinstance(value, bool | int | float):
                return YScalar(value, mark, text_col)
        self.problems.add(mark, f"found a value tagged {node.tag!r}; expected a plain string, number or boolean")
        return YScalar(None, mark, text_col)

    def mapping(self, node: yaml.nodes.MappingNode) -> YMap:
        items: list[tuple[YScalar, YValue]] = []
        seen: dict[tuple[str, Scalar], Mark] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.nodes.ScalarNode):
                self.problems.add(_mark(key_node), "found a list or mapping used as a key; expected a plain key")
                continue
            key = self.scalar(key_node)
            ident = (type(key.value).__name__, key.value)
            first = seen.get(ident)
            if first is not None:
                self.problems.add(
                    key.mark, f"duplicate key {key.value!r} (first at line {first.line}); expected each key once"
                )
                continue
            seen[ident] = key.mark
            items.append((key, self.value(value_node)))
        return YMap(tuple(items), _mark(node))


def parse(text: str, problems: Problems) -> YValue | None:
    """Parse one YAML document; syntax errors and bad keys go to `problems`. None for an empty file."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        where = exc.problem_mark or exc.context_mark
        mark = Mark(where.line + 1, where.column + 1) if where is not None else Mark(1, 1)
        # The usual cause: a template with braces written inside a [flow, list] without quotes.
        hint = " (quote templates that contain braces inside [ ] or { })" if "'{'" in str(exc.problem) else ""
        problems.add(mark, f"found invalid YAML ({exc.problem}); expected a valid YAML mapping{hint}")
        return None
    except yaml.YAMLError as exc:
        problems.add(Mark(1, 1), f"found unreadable YAML ({exc}); expected a valid YAML mapping")
        return None
    if node is None:
        return None
    return _Builder(problems).value(node)

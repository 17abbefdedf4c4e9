"""Route rules: load and check `route_rules.yaml`, anonymize console routes, filter action names."""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import unquote, unquote_plus

from console_proxy.core.errors import RulesError
from console_proxy.resources import default_rules_path
from console_proxy.rules.actions import DEFAULT_ACTION_UNKNOWN, DROPPED, ActionRules, action_token, check_allow
from console_proxy.rules.located import Mark, Problems, parse
from console_proxy.rules.schema import DEFAULT_UNKNOWN, Text, read_spec
from console_proxy.rules.sources import CliRules, ServerSchema, read_cli, read_server
from console_proxy.rules.trie import (
    Node,
    Terminal,
    add_route,
    compile_globs,
    compile_shape,
    parse_template,
    prefix_segments,
    unknown_token,
    walk,
)

# Why `RouteRules.drop_reason` refused an action name (also the metric label of the drop). A name on no
# `allow` entry is not dropped: it leaves as the `actions.unknown` token.
BAD_ACTION_SHAPE = "bad_action_shape"
ACTION_DROPPED = "action_dropped"
# Deeper routes are refused before matching; no console page comes near this.
MAX_SEGMENTS = 64
# Per rules object, least recently used out first, dropped with the object on reload. A console sends the same
# few routes and actions over and over. The route cache holds raw routes (database and table names) in memory:
# at most ROUTE_CACHE_SIZE of them, each at most ROUTE_CACHE_MAX_LENGTH characters (longer ones are not kept).
ROUTE_CACHE_SIZE = 4096
ROUTE_CACHE_MAX_LENGTH = 512

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")


def _decode(segment: str) -> str:
    return unquote(segment) if "%" in segment else segment


def _first_path(node: Node, segs: list[str], out: list[str]) -> Terminal | None:
    """`walk` without going back: the first path it tries (literal, else the variable, else the tail), in a loop.

    When that path ends on a template it is the one `walk` returns, with the same output; None means `walk`
    has to search (most routes never need it).
    """
    append = out.append
    for seg in segs:
        child = node.literals.get(seg)
        if child is not None:
            append(seg)
            node = child
            continue
        child = node.var
        if child is not None:
            values = node.var_values
            append(seg if values is not None and seg in values else node.var_name)
            node = child
            continue
        if node.tail is not None:
            append(node.tail_name)
        return node.tail
    return node.terminal


class RouteRules:
    """A checked, compiled rules file. Immutable; safe to share between threads and tasks."""

    def __init__(
        self,
        *,
        source: str,
        root: Node,
        template_count: int,
        prefixes: Sequence[tuple[str, ...]],
        unknown: str,
        drop: tuple[frozenset[str], re.Pattern[str] | None],
        allow: tuple[frozenset[str], re.Pattern[str] | None] | None,
        drop_count: int,
        server: ServerSchema | None = None,
        cli: CliRules | None = None,
        shape: re.Pattern[str] | None = None,
        unknown_action: str = DEFAULT_ACTION_UNKNOWN,
    ) -> None:
        self.source = source
        self.server = server if server is not None else ServerSchema()
        self.cli = cli if cli is not None else CliRules()
        self.template_count = template_count
        self.unknown = unknown
        self.drop_count = drop_count
        self.actions = ActionRules(drop=drop, allow=allow, shape=shape, unknown=unknown_action)
        self.unknown_action = unknown_action
        self.allow_count = self.actions.allow_count
        # Longest first, so that /hasura/console wins over /hasura when both are configured.
        self._prefixes = sorted(set(prefixes), key=len, reverse=True)
        self._root = root
        self._shape = shape
        self._cached_anonymize: Callable[[str], str] = functools.lru_cache(maxsize=ROUTE_CACHE_SIZE)(self._fail_closed)

    @property
    def action_shape(self) -> str | None:
        """The file's `actions.shape` (a regular expression matching whole names), or None."""
        return None if self._shape is None else self._shape.pattern

    @property
    def prefixes(self) -> tuple[str, ...]:
        """The URL prefixes stripped before matching, longest first."""
        return tuple("/" + "/".join(p) for p in self._prefixes)

    def anonymize(self, url: str) -> str:
        """The anonymized route of `url`: template literals and placeholders only, or the unknown token."""
        if type(url) is str and len(url) <= ROUTE_CACHE_MAX_LENGTH:
            return self._cached_anonymize(url)
        return self._fail_closed(url)

    def _fail_closed(self, url: str) -> str:
        try:
            return self._anonymize(url)
        except Exception:  # fail closed: whatever went wrong, raw text must not pass
            return self.unknown

    def _anonymize(self, url: str) -> str:
        split = self._split(url)
        if split is None:
            return self.unknown
        segs, query = split
        out: list[str] = []
        terminal = _first_path(self._root, segs, out)
        if terminal is None:
            out.clear()
            terminal = walk(self._root, segs, 0, out)
            if terminal is None:
                return self.unknown
        path = "/" + "/".join(out)
        if query and terminal.query:
            return path + self._query(terminal, query)
        return path

    def _split(self, url: str) -> tuple[list[str], str] | None:
        """The decoded path segments of `url` after the prefix, and its query; None when it is too deep."""
        # An empty route is the index page: the console's own URL clean-up strips its prefix, so its
        # index page arrives as "url": "" (docs/consoles.md).
        url = url.strip()
        cut = url.find("#")
        if cut >= 0:
            url = url[:cut]
        query = ""
        cut = url.find("?")
        if cut >= 0:
            url, query = url[:cut], url[cut + 1 :]
        # Without "://" the expression cannot match: most routes are paths, and skip it.
        scheme = _SCHEME.match(url) if "://" in url else None
        if scheme is not None:
            cut = url.find("/", scheme.end())
            url = url[cut:] if cut >= 0 else ""
        segs = [_decode(s) for s in url.split("/") if s] if "%" in url else list(filter(None, url.split("/")))
        if len(segs) > MAX_SEGMENTS:
            return None
        for prefix in self._prefixes:
            n = len(prefix)
            if len(segs) >= n and tuple(segs[:n]) == prefix:
                del segs[:n]
                break
        return segs, query

    def segments(self, url: str) -> list[str] | None:
        """The path segments the templates are matched against (prefix stripped, decoded); None if too deep."""
        split = self._split(url)
        return None if split is None else split[0]

    def parameter_at(self, path: Sequence[str | None]) -> str | None:
        """The name of the parameter the templates have after `path` (literals, None for a parameter), if any:
        a new template must use the same name there."""
        node: Node | None = self._root
        for seg in path:
            if node is None:
                return None
            node = node.var if seg is None else node.literals.get(seg)
        return node.var_name if node is not None and node.var is not None else None

    @staticmethod
    def _query(terminal: Terminal, query: str) -> str:
        kept: dict[str, str] = {}
        for part in query.split("&"):
            key, _, value = part.partition("=")
            key = unquote_plus(key)
            rule = terminal.query.get(key)
            if rule is None or key in kept:
                continue
            value = unquote_plus(value)
            kept[key] = value if rule.values is not None and value in rule.values else rule.name
        if not kept:
            return ""
        return "?" + "&".join(f"{key}={kept[key]}" for key in sorted(kept))

    def classify_action(self, name: object) -> tuple[str, str | None]:
        """What leaves of an action name: (kept, name), (unknown, the `actions.unknown` token) or (dropped, None)."""
        return self.actions.classify(name)

    def action(self, name: object) -> str | None:
        """The action name to send: the name itself, the `actions.unknown` token, or None when it is dropped."""
        return self.actions.classify(name)[1]

    def action_known(self, name: str) -> bool:
        """True when `name` leaves as it is (an `allow` entry matches it, it has the shape, it is not dropped)."""
        return self.actions.known(name)

    def drop_reason(self, name: object) -> str | None:
        """None when an event with this name is sent (as the name or as the token); else why not:
        BAD_ACTION_SHAPE for a name that is not a string, ACTION_DROPPED for one on the `drop` list."""
        outcome, _ = self.actions.classify(name)
        if outcome != DROPPED:
            return None
        return ACTION_DROPPED if isinstance(name, str) else BAD_ACTION_SHAPE


def _read(path: Path, source: str) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RulesError([f"{source}:1:1: the file does not exist; expected a readable YAML rules file"]) from None
    except OSError as exc:
        raise RulesError(
            [f"{source}:1:1: the file cannot be read ({exc.strerror}); expected a readable YAML rules file"]
        ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - data.rfind(b"\n", 0, exc.start)
        raise RulesError(
            [
                f"{source}:{line}:{col}: found a byte that is not UTF-8 (0x{data[exc.start]:02x});"
                " expected a UTF-8 text file"
            ]
        ) from None


def load_rules(path: str | os.PathLike[str] | None = None, *, prefixes: Sequence[str] = ()) -> RouteRules:
    """Load, check and compile a rules file (None: the packaged default); raise RulesError when it is bad.

    `prefixes` are URL prefixes added to those in the file, such as "/hasura/console".
    """
    file = Path(path) if path is not None else default_rules_path()
    source = os.fspath(path) if path is not None else str(file)
    problems = Problems()
    spec = read_spec(parse(_read(file, source), problems), problems)

    root = Node()
    count = 0
    for route in spec.routes:
        segments = parse_template(route.path, problems)
        if segments is not None and add_route(root, route.path, segments, route.query, problems):
            count += 1
    prefix_segs = [p for p in (prefix_segments(t, problems) for t in spec.prefixes) if p is not None]
    unknown = unknown_token(spec.unknown, problems) if spec.unknown is not None else DEFAULT_UNKNOWN
    drop = compile_globs(spec.drop, problems)
    allow = compile_globs(spec.allow, problems) if spec.allow is not None else None
    server = read_server(spec.server, problems) if spec.server is not None else ServerSchema()
    cli = read_cli(spec.cli, problems) if spec.cli is not None else CliRules()
    shape = compile_shape(spec.shape, problems) if spec.shape is not None else None
    if spec.allow is not None and (spec.shape is None or shape is not None):
        check_allow(spec.allow, shape, problems)
    action_unknown = action_token(spec.action_unknown, problems) if spec.action_unknown is not None else None
    if problems:
        raise RulesError(problems.lines(source))

    extra = Problems()
    for index, prefix in enumerate(prefixes, start=1):
        text = prefix if prefix.startswith("/") else "/" + prefix
        segs = prefix_segments(Text(text.rstrip("/") or text, Mark(1, index), 1), extra)
        if segs is not None:
            prefix_segs.append(segs)
    if extra:
        raise RulesError(extra.lines("--prefix"))
    return RouteRules(
        source=source,
        root=root,
        template_count=count,
        prefixes=prefix_segs,
        unknown=unknown or DEFAULT_UNKNOWN,
        drop=drop,
        allow=allow,
        drop_count=len(spec.drop),
        server=server,
        cli=cli,
        shape=shape,
        unknown_action=action_unknown or DEFAULT_ACTION_UNKNOWN,
    )


class RulesHolder:
    """The current rules of a running proxy; `reload()` swaps them atomically or keeps the old ones."""

    def __init__(self, path: str | os.PathLike[str] | None, prefixes: Sequence[str] = ()) -> None:
        self.path = path
        self.prefixes = tuple(prefixes)
        self._rules = load_rules(path, prefixes=self.prefixes)

    @property
    def rules(self) -> RouteRules:
        """The rules in force; read once per request and use that object throughout."""
        return self._rules

    def reload(self) -> list[str]:
        """Load the file again: [] when the new rules are in force, else the error lines (old rules kept)."""
        try:
            rules = load_rules(self.path, prefixes=self.prefixes)
        except RulesError as exc:
            return exc.messages
        self._rules = rules  # one reference assignment: readers see the old or the new rules, never a mix
        return []

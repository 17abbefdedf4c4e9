"""Action names: what leaves of one (docs/design.md, "Route rules"). Pure, no I/O.

A name on the `drop` list is dropped; a name that an `allow` entry matches, and that has the file's shape,
leaves as it is; every other name, whatever its shape, leaves as one fixed token (`actions.unknown`).
Without an `allow` list no name is known, so every name that is not dropped leaves as the token.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from console_proxy.core.events import ACTION_SHAPE
from console_proxy.rules.located import Problems
from console_proxy.rules.schema import Text

DEFAULT_ACTION_UNKNOWN = "UNKNOWN"
# What an `allow` entry must look like when the file sets no `shape`: a Redux action constant
# (Namespace/CONSTANT, up to three namespaces that may hold _ or start with @ or @@, or a bare CONSTANT).
CONSTANT_SHAPE = re.compile(r"(?:@{0,2}[A-Za-z][A-Za-z0-9_]*/){0,3}[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*")
_TOKEN = re.compile(r"[A-Z][A-Z0-9_]{0,63}\Z")
# A glob at all (its own message comes from compile_globs): only such entries are checked for their shape.
_A_GLOB = re.compile(r"[A-Za-z0-9_@/:.\- *?]{1,128}\Z")
# The outcomes of `ActionRules.classify`.
KEPT = "kept"
UNKNOWN = "unknown"
DROPPED = "dropped"
ACTION_CACHE_SIZE = 1024
# Names longer than this are not cached (they are never kept: ACTION_SHAPE stops at 128).
_CACHED_LENGTH = 128
# Stands for a wildcard when an `allow` entry's shape is checked.
_WILD_STAND_IN = "X"

Globs = tuple[frozenset[str], re.Pattern[str] | None]


def action_token(value: Text, problems: Problems) -> str | None:
    """`actions.unknown`: one upper-case constant, such as UNKNOWN."""
    if not _TOKEN.match(value.text):
        problems.add(
            value.mark,
            f"'actions.unknown' is {value.text!r}; expected one upper-case constant (A-Z, 0-9, _) such as UNKNOWN",
        )
        return None
    return value.text


def check_allow(entries: tuple[Text, ...], shape: re.Pattern[str] | None, problems: Problems) -> None:
    """Report every `allow` entry that is not shaped like an action constant (wildcards standing for a letter).

    An entry that starts with a wildcard would let names of any namespace through, and is refused too.
    """
    expected = shape if shape is not None else CONSTANT_SHAPE
    for entry in entries:
        text = entry.text
        if not _A_GLOB.match(text):
            continue
        if text[:1] in ("*", "?"):
            problems.add(
                entry.mark,
                f"'allow' entry {text!r} starts with a wildcard; expected an action constant such as"
                " Data/SET_TABLE, or a constant prefix such as Data/*",
            )
            continue
        filled = text.replace("*", _WILD_STAND_IN).replace("?", _WILD_STAND_IN)
        if expected.fullmatch(filled) is None:
            problems.add(
                entry.mark,
                f"'allow' entry {text!r} is not shaped like an action constant"
                f" ({'the shape' if shape is not None else 'the default shape'} {expected.pattern!r});"
                " expected a name such as Data/SET_TABLE",
            )


def _matches(globs: Globs, name: str) -> bool:
    exact, regex = globs
    return name in exact or (regex is not None and regex.match(name) is not None)


class ActionRules:
    """The `actions` section, compiled. Immutable; safe to share between threads and tasks."""

    def __init__(
        self,
        *,
        drop: Globs,
        allow: Globs | None,
        shape: re.Pattern[str] | None,
        unknown: str = DEFAULT_ACTION_UNKNOWN,
    ) -> None:
        self.unknown = unknown
        self.shape = shape
        # Without a shape of its own a file's names must still look like action constants.
        self._shape = shape if shape is not None else CONSTANT_SHAPE
        self.allow_count = None if allow is None else len(allow[0]) + (0 if allow[1] is None else 1)
        self._drop = drop
        self._allow = allow
        self._cached: Callable[[str], tuple[str, str | None]] = functools.lru_cache(maxsize=ACTION_CACHE_SIZE)(
            self._classify
        )

    def classify(self, name: object) -> tuple[str, str | None]:
        """(KEPT, name), (UNKNOWN, the token) or (DROPPED, None): what leaves of `name`."""
        if type(name) is str and len(name) <= _CACHED_LENGTH:
            return self._cached(name)
        return self._classify(name)

    def _classify(self, name: object) -> tuple[str, str | None]:
        if not isinstance(name, str):
            return DROPPED, None
        if _matches(self._drop, name):  # drop before allow
            return DROPPED, None
        if self._allow is not None and self.known(name):
            return KEPT, name
        return UNKNOWN, self.unknown

    def known(self, name: str) -> bool:
        """True when `name` leaves as it is: an `allow` entry matches it, and it has the basic shape and the file's
        (CONSTANT_SHAPE when the file has none)."""
        if self._allow is None or ACTION_SHAPE.fullmatch(name) is None:
            return False
        if self._shape.fullmatch(name) is None:
            return False
        return _matches(self._allow, name) and not _matches(self._drop, name)

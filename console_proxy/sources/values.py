"""Strict checks for the few values the server's and the CLI's messages may pass on. Pure, no I/O."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Container

# A release as Hasura numbers them (v2.36.0, v2.36.0-ce, v2.0.0-beta.1, v1.0.0-alpha36): a free
# pre-release label would let 32 characters of the sender's choosing through, so only Hasura's labels pass.
# [0-9] rather than \d: \d would accept any Unicode digit.
RELEASE_PATTERN = re.compile(r"v?[0-9]{1,4}\.[0-9]{1,4}\.[0-9]{1,4}(-(alpha|beta|rc|ce|ee|pro|cloud)\.?[0-9]{0,4})?")
OTHER = "other"


def release(value: object, field: str, dropped: Counter[str]) -> str | None:
    """`value` when it is a release version; else None, counted as `bad_<field>` unless it was absent."""
    if isinstance(value, str) and len(value) <= 32 and RELEASE_PATTERN.fullmatch(value):
        return value
    if value is not None:
        dropped[f"bad_{field}"] += 1
    return None


def enumerated(value: object, known: Container[str], field: str, dropped: Counter[str]) -> str | None:
    """`value` when it is one of `known`; another string becomes "other" (counted `unknown_<field>`);
    anything else None (counted `bad_<field>` unless it was absent)."""
    if isinstance(value, str):
        if value in known:
            return value
        dropped[f"unknown_{field}"] += 1
        return OTHER
    if value is not None:
        dropped[f"bad_{field}"] += 1
    return None

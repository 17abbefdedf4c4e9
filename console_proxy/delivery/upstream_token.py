"""The bearer token the gate sends its collector (`--upstream-token-file`): the file's first line that is not blank,
read at start-up; never logged, never shown (docs/collector.md, "Tokens")."""

from __future__ import annotations

import re
import stat
from pathlib import Path

# What the collector takes as a token (collector/tokens.py): visible ASCII without spaces, 16 to 512 of them. A
# token of anything else could not be put in a header as it is.
_TOKEN = re.compile(r"[\x21-\x7e]{16,512}")


class TokenFileError(ValueError):
    """The token file cannot be used; the message says why, never what it holds."""


def read_upstream_token(path: Path) -> str:
    """The file's first non-blank line, stripped; TokenFileError when it cannot be read, has none, or that line is
    not a token."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TokenFileError(f"a readable file ({exc.strerror or type(exc).__name__})") from None
    except UnicodeDecodeError:
        raise TokenFileError("a text file (it is not UTF-8)") from None
    for line in text.splitlines():
        token = line.strip()
        if token:
            if not _TOKEN.fullmatch(token):
                raise TokenFileError("a file whose first line is a token: 16 to 512 visible ASCII characters")
            return token
    raise TokenFileError("a file holding a token (it is empty)")


def readable_by_others(path: Path) -> bool:
    """Whether users other than the owner (its group, or anyone) may read the file."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_IRGRP | stat.S_IROTH))

"""Bearer tokens of a collector that is not public: read once from a file, compared in constant time."""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Sequence
from pathlib import Path

from console_proxy.collector.house import SettingsError

# What a token may be: visible ASCII without spaces (RFC 6750's b64token, and a little more), not too long.
_TOKEN = re.compile(r"[\x21-\x7e]{16,512}")


def read_tokens(path: Path, label: str = "--token-file") -> tuple[bytes, ...]:
    """One token a line; blank lines and lines starting with # are skipped. SettingsError (one sentence) for an
    unreadable file, a line that is not a token, or a file without any."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
        raise SettingsError(
            f"{label} is {json.dumps(str(path))}, which cannot be read ({reason}); "
            "expected a text file of tokens, one a line."
        ) from None
    tokens = []
    for number, line in enumerate(text.splitlines(), start=1):
        token = line.strip()
        if not token or token.startswith("#"):
            continue
        if not _TOKEN.fullmatch(token):
            raise SettingsError(
                f"{label} {json.dumps(str(path))} has something other than a token on line {number}; "
                "expected 16 to 512 visible ASCII characters without spaces."
            )
        tokens.append(token.encode("ascii"))
    if not tokens:
        raise SettingsError(f"{label} {json.dumps(str(path))} holds no token; expected at least one, one a line.")
    return tuple(tokens)


def authorized(header: bytes | None, tokens: Sequence[bytes]) -> bool:
    """Whether an Authorization header carries `Bearer <one of tokens>`; every token is compared, in constant
    time, so the answer's timing says nothing about which part of which token matched."""
    if header is None or header[:7].lower() != b"bearer ":
        return False
    given = header[7:].strip()
    found = False
    for token in tokens:
        found |= hmac.compare_digest(given, token)
    return found

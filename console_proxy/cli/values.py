"""Checks of one setting's value, given as a flag or a `CONSOLE_PROXY_<FLAG>` variable: each returns the value in
its type or raises SettingsError, one sentence naming the setting, quoting the value and saying what was expected."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from urllib.parse import urlsplit

from console_proxy.asgi.origins import normalize_origin
from console_proxy.asgi.proxy_headers import TRUST_EVERYONE, TrustedProxies
from console_proxy.core.errors import SettingsError
from console_proxy.core.events import valid_uuid
from console_proxy.delivery.queue_url import parse_sentinel_url
from console_proxy.hasura.optout import parse_bool, quote
from console_proxy.proxy.rewrite import public_url_ok

ENV_PREFIX = "CONSOLE_PROXY_"
EXAMPLE_UUID = "11111111-2222-4333-8444-555555555555"


def flag_of(field: str) -> str:
    """`state_dir` -> `--state-dir`."""
    return "--" + field.replace("_", "-")


def env_of(field: str) -> str:
    """`state_dir` -> `CONSOLE_PROXY_STATE_DIR`."""
    return ENV_PREFIX + field.upper()


@dataclasses.dataclass(frozen=True)
class Raw:
    """One setting as given, and where, for checking and for the error sentence."""

    field: str
    value: object
    from_env: bool
    # Where a config file gave it (`FILE:LINE:COL: name`), instead of a flag or a variable.
    origin: str | None = None

    @property
    def label(self) -> str:
        if self.origin is not None:
            return self.origin
        return f"{env_of(self.field)} ({flag_of(self.field)})" if self.from_env else flag_of(self.field)

    @property
    def text(self) -> str:
        return self.value if isinstance(self.value, str) else str(self.value)

    def fail(self, expected: str) -> SettingsError:
        return SettingsError(f"{self.label} is {quote(self.value)}; expected {expected}.")


def host_name(raw: Raw) -> str:
    text = raw.text.strip()
    if not text or any(c.isspace() or c in "/?#" for c in text):
        raise raw.fail("a host name or IP address")
    return text


def whole_number(raw: Raw, low: int, high: int | None = None) -> int:
    expected = f"a whole number from {low} to {high}" if high is not None else f"a whole number, at least {low}"
    if isinstance(raw.value, bool):
        raise raw.fail(expected)
    try:
        number = raw.value if isinstance(raw.value, int) else int(raw.text.strip())
    except ValueError:
        raise raw.fail(expected) from None
    if number < low or (high is not None and number > high):
        raise raw.fail(expected)
    return number


def seconds(raw: Raw, *, zero_ok: bool) -> float:
    expected = "a number of seconds, 0 or more" if zero_ok else "a number of seconds above 0"
    if isinstance(raw.value, bool):
        raise raw.fail(expected)
    try:
        number = float(raw.value) if isinstance(raw.value, int | float) else float(raw.text.strip())
    except ValueError:
        raise raw.fail(expected) from None
    if not math.isfinite(number) or number < 0 or (number == 0 and not zero_ok):
        raise raw.fail(expected)
    return number


def http_url(raw: Raw) -> str:
    text = raw.text.strip()
    try:
        parts = urlsplit(text)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        _ = parts.port  # ValueError for a port that is not a number or is out of range
    except ValueError:
        valid = False
    if not valid or any(c.isspace() for c in text):
        raise raw.fail("an http:// or https:// URL with a host")
    return text


def public_url(raw: Raw) -> str:
    text = http_url(raw).rstrip("/")
    if not public_url_ok(text):
        raise raw.fail("an http:// or https:// URL with a host and at most a path, such as https://hasura.example.com")
    return text


def queue_url(raw: Raw) -> str:
    text = raw.text.strip()
    if text == "sqlite":
        return text
    try:
        valid = parse_sentinel_url(text) is not None
        if not valid:
            parts = urlsplit(text)
            db = parts.path.strip("/")
            _ = parts.port  # ValueError for a port that is not a number or is out of range
            valid = parts.scheme in ("redis", "rediss") and bool(parts.hostname) and (db == "" or db.isdecimal())
    except ValueError:
        valid = False
    if not valid or any(c.isspace() for c in text):
        raise raw.fail('"sqlite", a redis://HOST:PORT/DB (or rediss://) URL, or redis+sentinel://HOST:PORT/SERVICE/DB')
    return text


def url_prefix(raw: Raw) -> str:
    text = raw.text
    trimmed = text.rstrip("/")
    # "/" alone is refused too: the console needs a prefix of its own beside /healthz, /readyz and /_telemetry.
    segments = trimmed.split("/")[1:]
    bad = [s for s in segments if not s or not s.isprintable() or any(c in s for c in " ?#%\\")]
    if not text.startswith("/") or not segments or bad:
        raise raw.fail('a path of one or more segments starting with "/", such as "/console"')
    return trimmed


def mode(raw: Raw) -> str:
    if raw.text not in ("server", "cli"):
        raise raw.fail('"server" or "cli"')
    return raw.text


def server_uuid(raw: Raw) -> str:
    value = valid_uuid(raw.text.strip())
    if value is None:
        raise raw.fail(f'a UUID such as "{EXAMPLE_UUID}"')
    return value


def boolean(raw: Raw) -> bool:
    return raw.value if isinstance(raw.value, bool) else parse_bool(raw.text, raw.label)


def _items(raw: Raw) -> list[str]:
    # A repeated flag gives a tuple; its variable is a comma-separated list.
    values = list(raw.value) if isinstance(raw.value, tuple) else raw.text.split(",")
    return [value.strip() for value in values if value.strip()]


def origins(raw: Raw) -> tuple[str, ...]:
    origins = []
    for item in _items(raw):
        normalized = normalize_origin(item.rstrip("/"))
        if normalized is None:
            raise raw.fail('origins such as "https://console.example.com" or "http://localhost:8080"')
        origins.append(normalized)
    return tuple(origins)


def trusted_proxies(raw: Raw) -> tuple[str, ...]:
    items = tuple(_items(raw))
    try:
        TrustedProxies.parse(items)
    except ValueError:
        raise raw.fail(f'IP addresses and networks such as "10.0.0.1,192.168.0.0/16", or "{TRUST_EVERYONE}"') from None
    return items


def rate(raw: Raw) -> float:
    expected = "a number of events a second above 0"
    try:
        number = float(raw.text.strip())
    except ValueError:
        raise raw.fail(expected) from None
    if not math.isfinite(number) or number <= 0:
        raise raw.fail(expected)
    return number


_HOST_NAME = re.compile(r"(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?|\[[0-9a-f:.]+\]")


def host_names(raw: Raw) -> tuple[str, ...]:
    hosts = tuple(item.lower() for item in _items(raw))
    if any(not _HOST_NAME.fullmatch(host) for host in hosts):
        raise raw.fail('host names such as "console.example.com" or "*.example.com", without a port')
    return hosts


def existing_file(raw: Raw) -> Path:
    path = Path(raw.text).expanduser()
    if not path.is_file():
        raise raw.fail("an existing file")
    return path


def token_file(raw: Raw) -> Path:
    """A file whose first non-blank line is a bearer token (read now, to fail at start-up; never shown)."""
    from console_proxy.delivery.upstream_token import TokenFileError, read_upstream_token

    path = Path(raw.text).expanduser()
    try:
        read_upstream_token(path)
    except TokenFileError as error:
        raise raw.fail(str(error)) from None
    return path


def existing_directory(raw: Raw) -> Path:
    path = Path(raw.text).expanduser()
    if not path.is_dir():
        raise raw.fail("an existing directory")
    return path


def creatable_file(raw: Raw) -> Path:
    path = Path(raw.text).expanduser()
    if path.is_dir():
        raise raw.fail("a file (it is created when missing), not a directory")
    return path


def creatable_directory(raw: Raw) -> Path:
    path = Path(raw.text).expanduser()
    if path.exists() and not path.is_dir():
        raise raw.fail("a directory (it is created when missing)")
    return path


def log_format(raw: Raw) -> str:
    if raw.text not in ("text", "json"):
        raise raw.fail('"text" or "json"')
    return raw.text

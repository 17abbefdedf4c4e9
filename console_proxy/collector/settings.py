"""`console-proxy collect`'s flags and `CONSOLE_PROXY_COLLECT_<FLAG>` variables into checked settings. Pure:
reading the token file and the rules file is left to the command."""

from __future__ import annotations

import dataclasses
import difflib
import json
from collections.abc import Callable, Mapping
from pathlib import Path

from console_proxy.collector.dashboard import DEFAULT_MIN_INSTALLATIONS
from console_proxy.collector.envelope import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_EVENTS
from console_proxy.collector.house import SettingsError, resolve_state_dir
from console_proxy.collector.store import check_store_url, default_store_url

ENV_PREFIX = "CONSOLE_PROXY_COLLECT_"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9696
MAX_RETENTION_DAYS = 100 * 366


@dataclasses.dataclass(frozen=True)
class CollectSettings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    store: str = ""
    rules: Path | None = None
    min_installations: int = DEFAULT_MIN_INSTALLATIONS
    token_file: Path | None = None
    retention_days: int | None = None
    state_dir: Path | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_batch_events: int = DEFAULT_MAX_EVENTS


def env_of(field: str) -> str:
    """`min_installations` -> `CONSOLE_PROXY_COLLECT_MIN_INSTALLATIONS`."""
    return ENV_PREFIX + field.upper()


def flag_of(field: str) -> str:
    return "--" + field.replace("_", "-")


def _label(field: str, from_env: bool) -> str:
    return f"{env_of(field)} ({flag_of(field)})" if from_env else flag_of(field)


def _fail(label: str, value: str, expected: str) -> SettingsError:
    return SettingsError(f"{label} is {json.dumps(value)}; expected {expected}.")


def _int(low: int, high: int) -> Callable[[str, str], object]:
    def check(label: str, value: str) -> object:
        text = value.strip()
        if not text.isdecimal() or not low <= int(text) <= high:
            raise _fail(label, value, f"a whole number from {low} to {high}")
        return int(text)

    return check


def _host(label: str, value: str) -> object:
    text = value.strip()
    if not text or any(c.isspace() or c in "/?#" for c in text):
        raise _fail(label, value, "a host name or IP address")
    return text


def _file(label: str, value: str) -> object:
    path = Path(value).expanduser()
    if not path.is_file():
        raise _fail(label, value, "an existing file")
    return path


def _directory(label: str, value: str) -> object:
    path = Path(value).expanduser()
    if path.exists() and not path.is_dir():
        raise _fail(label, value, "a directory (it is created when missing)")
    return path


CHECKS: Mapping[str, Callable[[str, str], object]] = {
    "host": _host,
    "port": _int(0, 65535),
    "store": lambda label, value: check_store_url(value, label),
    "rules": _file,
    "min_installations": _int(1, 1_000_000),
    "token_file": _file,
    "retention_days": _int(1, MAX_RETENTION_DAYS),
    "state_dir": _directory,
    "max_body_bytes": _int(1024, 256 * 1024 * 1024),
    "max_batch_events": _int(1, 1_000_000),
}


def _check_unknown_variables(env: Mapping[str, str]) -> None:
    known = {env_of(field) for field in CHECKS}
    for name in sorted(env):
        if name.startswith(ENV_PREFIX) and name not in known and env[name] != "":
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f"did you mean {close[0]}?" if close else 'expected one listed by "console-proxy collect --help".'
            raise SettingsError(f"{name} is set but is not a collector setting; {hint}")


def collect_settings(options: Mapping[str, str | None], env: Mapping[str, str]) -> CollectSettings:
    """Each flag in `options` (None: not given), else its variable in `env` (empty: unset), else its default;
    the store defaults to a DuckDB file in the state directory. SettingsError, one sentence."""
    _check_unknown_variables(env)
    values: dict[str, object] = {}
    for field, check in CHECKS.items():
        given = options.get(field)
        from_env = given is None and env.get(env_of(field), "") != ""
        value = env[env_of(field)] if from_env else given
        if value is not None:
            values[field] = check(_label(field, from_env), value)
    state_dir = values.get("state_dir")
    values["state_dir"] = resolve_state_dir(state_dir if isinstance(state_dir, Path) else None, env)
    if "store" not in values:
        values["store"] = default_store_url(values["state_dir"])  # type: ignore[arg-type]
    return CollectSettings(**values)  # type: ignore[arg-type]

"""Flags and `CONSOLE_PROXY_<FLAG>` variables into a checked Settings; the click options `serve` and `status` share."""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click

from console_proxy.asgi.origins import normalize_origin
from console_proxy.cli.exits import EXIT_CONFIG
from console_proxy.core import settings as defaults
from console_proxy.core.errors import SettingsError
from console_proxy.core.events import valid_uuid
from console_proxy.core.settings import Settings, resolve_state_dir
from console_proxy.delivery.queue_url import parse_sentinel_url
from console_proxy.hasura.optout import parse_bool, quote

ENV_PREFIX = "CONSOLE_PROXY_"
EXAMPLE_UUID = "11111111-2222-4333-8444-555555555555"

F = TypeVar("F", bound=Callable[..., Any])
Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def flag_of(field: str) -> str:
    """`state_dir` -> `--state-dir`."""
    return "--" + field.replace("_", "-")


def env_of(field: str) -> str:
    """`state_dir` -> `CONSOLE_PROXY_STATE_DIR`."""
    return ENV_PREFIX + field.upper()


def setting_source(options: Mapping[str, object], env: Mapping[str, str], field: str) -> str:
    """Where `field` was set: its flag, else its environment variable; the flag's name when neither is."""
    if options.get(field) is None and env.get(env_of(field), "") != "":
        return env_of(field)
    return flag_of(field)


@dataclasses.dataclass(frozen=True)
class _Raw:
    """One setting as given, and where, for checking and for the error sentence."""

    field: str
    value: object
    from_env: bool

    @property
    def label(self) -> str:
        return f"{env_of(self.field)} ({flag_of(self.field)})" if self.from_env else flag_of(self.field)

    @property
    def text(self) -> str:
        return self.value if isinstance(self.value, str) else str(self.value)

    def fail(self, expected: str) -> SettingsError:
        return SettingsError(f"{self.label} is {quote(self.value)}; expected {expected}.")


def _host(raw: _Raw) -> str:
    text = raw.text.strip()
    if not text or any(c.isspace() or c in "/?#" for c in text):
        raise raw.fail("a host name or IP address")
    return text


def _int(raw: _Raw, low: int, high: int | None = None) -> int:
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


def _seconds(raw: _Raw, *, zero_ok: bool) -> float:
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


def _url(raw: _Raw) -> str:
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


def _queue(raw: _Raw) -> str:
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


def _prefix(raw: _Raw) -> str:
    text = raw.text
    trimmed = text.rstrip("/")
    # "/" alone is refused too: the console needs a prefix of its own beside /healthz, /readyz and /_telemetry.
    segments = trimmed.split("/")[1:]
    bad = [s for s in segments if not s or not s.isprintable() or any(c in s for c in " ?#%\\")]
    if not text.startswith("/") or not segments or bad:
        raise raw.fail('a path of one or more segments starting with "/", such as "/console"')
    return trimmed


def _mode(raw: _Raw) -> str:
    if raw.text not in ("server", "cli"):
        raise raw.fail('"server" or "cli"')
    return raw.text


def _server_uuid(raw: _Raw) -> str:
    value = valid_uuid(raw.text.strip())
    if value is None:
        raise raw.fail(f'a UUID such as "{EXAMPLE_UUID}"')
    return value


def _bool(raw: _Raw) -> bool:
    return raw.value if isinstance(raw.value, bool) else parse_bool(raw.text, raw.label)


def _items(raw: _Raw) -> list[str]:
    # A repeated flag gives a tuple; its variable is a comma-separated list.
    values = list(raw.value) if isinstance(raw.value, tuple) else raw.text.split(",")
    return [value.strip() for value in values if value.strip()]


def _origins(raw: _Raw) -> tuple[str, ...]:
    origins = []
    for item in _items(raw):
        normalized = normalize_origin(item.rstrip("/"))
        if normalized is None:
            raise raw.fail('origins such as "https://console.example.com" or "http://localhost:8080"')
        origins.append(normalized)
    return tuple(origins)


def _rate(raw: _Raw) -> float:
    expected = "a number of events a second above 0"
    try:
        number = float(raw.text.strip())
    except ValueError:
        raise raw.fail(expected) from None
    if not math.isfinite(number) or number <= 0:
        raise raw.fail(expected)
    return number


_HOST_NAME = re.compile(r"(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?|\[[0-9a-f:.]+\]")


def _hosts(raw: _Raw) -> tuple[str, ...]:
    hosts = tuple(item.lower() for item in _items(raw))
    if any(not _HOST_NAME.fullmatch(host) for host in hosts):
        raise raw.fail('host names such as "console.example.com" or "*.example.com", without a port')
    return hosts


def _file(raw: _Raw) -> Path:
    path = Path(raw.text).expanduser()
    if not path.is_file():
        raise raw.fail("an existing file")
    return path


def _directory(raw: _Raw) -> Path:
    path = Path(raw.text).expanduser()
    if not path.is_dir():
        raise raw.fail("an existing directory")
    return path


def _creatable_file(raw: _Raw) -> Path:
    path = Path(raw.text).expanduser()
    if path.is_dir():
        raise raw.fail("a file (it is created when missing), not a directory")
    return path


def _creatable_directory(raw: _Raw) -> Path:
    path = Path(raw.text).expanduser()
    if path.exists() and not path.is_dir():
        raise raw.fail("a directory (it is created when missing)")
    return path


@dataclasses.dataclass(frozen=True)
class Option:
    """One `serve`/`status` flag: the Settings field it sets, its help, and how its value is checked."""

    field: str
    metavar: str
    help: str
    default: str
    check: Callable[[_Raw], object]
    multiple: bool = False


OPTIONS: tuple[Option, ...] = (
    Option("host", "HOST", "Address to listen on; also a Host name the server answers.", defaults.DEFAULT_HOST, _host),
    Option(
        "port",
        "PORT",
        "Port to listen on (0: any free port).",
        str(defaults.DEFAULT_PORT),
        lambda raw: _int(raw, 0, 65535),
    ),
    Option(
        "rules",
        "FILE",
        "Rules file: how routes are anonymized, which action names, server counts and CLI commands pass.",
        "the route_rules.yaml shipped with console-proxy",
        _file,
    ),
    Option(
        "static",
        "DIR",
        "Directory of the console's static files.",
        "the demo console shipped with console-proxy",
        _directory,
    ),
    Option(
        "prefix",
        "PATH",
        "URL prefix the console is served under and stripped from routes.",
        defaults.DEFAULT_PREFIX,
        _prefix,
    ),
    Option(
        "upstream",
        "URL",
        "Telemetry collector to POST batches to (upstream mode).",
        "none: local mode, events go to <state-dir>/events.jsonl and nothing leaves the machine",
        _url,
    ),
    Option(
        "state_dir",
        "DIR",
        "Directory of the local event file (events.jsonl) or the spool (spool.db); created when missing.",
        "$XDG_STATE_HOME/console-proxy or ~/.local/state/console-proxy",
        _creatable_directory,
    ),
    Option("mode", "server|cli", "Whose console this is; sent as console_mode.", defaults.DEFAULT_MODE, _mode),
    Option(
        "hasura_endpoint",
        "URL",
        "Hasura server to ask for its UUID and version (attached to every event).",
        "none",
        _url,
    ),
    Option(
        "admin_secret", "SECRET", "Sent as X-Hasura-Admin-Secret to --hasura-endpoint.", "none", lambda raw: raw.text
    ),
    Option("server_uuid", "UUID", "Server UUID to attach, instead of asking --hasura-endpoint.", "none", _server_uuid),
    Option(
        "cli_config",
        "FILE",
        "The Hasura CLI's global config (cli mode: its uuid and enable_telemetry).",
        "~/.hasura/config.json, or ~/.hasura/.config.json",
        _creatable_file,
    ),
    Option(
        "enable_telemetry",
        "BOOL",
        "true/t/yes/y/1 or false/f/no/n/0; decides before every other setting.",
        "not set: HASURA_GRAPHQL_ENABLE_TELEMETRY, the CLI config, DO_NOT_TRACK decide, else on",
        _bool,
    ),
    Option(
        "drop_test_events",
        "BOOL",
        "Drop the events of development builds of the console (topics console_test, console-test-v2) instead"
        " of keeping them apart under the topic console_test.",
        "false",
        _bool,
    ),
    Option(
        "identity_trust_env",
        "BOOL",
        "Let the Hasura lookups use HTTP(S)_PROXY, ALL_PROXY and .netrc (they carry the admin secret).",
        "false",
        _bool,
    ),
    Option(
        "spool_max_events",
        "N",
        "Most events waiting in the queue (spool or Redis stream); a batch beyond it gets 503.",
        str(defaults.DEFAULT_SPOOL_MAX_EVENTS),
        lambda raw: _int(raw, 1),
    ),
    Option(
        "spool_max_bytes",
        "BYTES",
        "Most bytes of event JSON in the queue, or in local mode in the event file; beyond it 503.",
        str(defaults.DEFAULT_SPOOL_MAX_BYTES),
        lambda raw: _int(raw, 1),
    ),
    Option(
        "spool_max_age_s",
        "SECONDS",
        "An undelivered event older than this (7 days) is removed and counted as expired.",
        str(defaults.DEFAULT_SPOOL_MAX_AGE_S),
        lambda raw: _seconds(raw, zero_ok=False),
    ),
    Option(
        "batch_max_events",
        "N",
        "Most events in one upstream request (each request holds one topic).",
        str(defaults.DEFAULT_BATCH_MAX_EVENTS),
        lambda raw: _int(raw, 1),
    ),
    Option(
        "batch_max_delay_s",
        "SECONDS",
        "Longest an event waits for others to fill an upstream batch.",
        str(defaults.DEFAULT_BATCH_MAX_DELAY_S),
        lambda raw: _seconds(raw, zero_ok=True),
    ),
    Option(
        "upstream_timeout_s",
        "SECONDS",
        "Deadline of one whole upstream attempt (connect, send, wait, read); then it is retried.",
        str(defaults.DEFAULT_UPSTREAM_TIMEOUT_S),
        lambda raw: _seconds(raw, zero_ok=False),
    ),
    Option(
        "retry_base_s",
        "SECONDS",
        "Backoff base: attempt n waits a random time up to this x 2^n.",
        str(defaults.DEFAULT_RETRY_BASE_S),
        lambda raw: _seconds(raw, zero_ok=False),
    ),
    Option(
        "retry_cap_s",
        "SECONDS",
        "Longest wait between upstream attempts, a collector's Retry-After included.",
        str(defaults.DEFAULT_RETRY_CAP_S),
        lambda raw: _seconds(raw, zero_ok=False),
    ),
    Option(
        "shutdown_grace_s",
        "SECONDS",
        "How long shutdown keeps sending queued events before leaving the rest for the next start.",
        str(defaults.DEFAULT_SHUTDOWN_GRACE_S),
        lambda raw: _seconds(raw, zero_ok=True),
    ),
    Option(
        "identity_refresh_s",
        "SECONDS",
        "How often --hasura-endpoint is asked again for its UUID and version.",
        str(defaults.DEFAULT_IDENTITY_REFRESH_S),
        lambda raw: _seconds(raw, zero_ok=False),
    ),
    Option(
        "queue",
        "sqlite|URL",
        "Where accepted batches wait for the forwarder: the spool file, or a Redis stream many processes share.",
        defaults.DEFAULT_QUEUE,
        _queue,
    ),
    Option(
        "queue_lease_s",
        "SECONDS",
        "How long a batch a process claimed from the Redis queue may sit idle before another process takes it.",
        str(defaults.DEFAULT_QUEUE_LEASE_S),
        lambda raw: _seconds(raw, zero_ok=False),
    ),
    Option(
        "queue_require_aof",
        "BOOL",
        "Refuse to start unless the Redis queue has appendonly yes.",
        "false",
        _bool,
    ),
    Option(
        "workers",
        "N",
        "Server processes sharing the listening socket (more than 1 needs --queue redis://...).",
        str(defaults.DEFAULT_WORKERS),
        lambda raw: _int(raw, 1, 64),
    ),
    Option(
        "allowed_host",
        "HOST",
        "Another Host name the server answers (repeatable; *.example.com for subdomains).",
        "none: the bound address, localhost, 127.0.0.1 and [::1]",
        _hosts,
        multiple=True,
    ),
    Option(
        "allowed_origin",
        "ORIGIN",
        "Another origin whose pages may send events (repeatable; the variable takes a comma-separated list).",
        "none: only the console's own origin, and clients that send no Origin",
        _origins,
        multiple=True,
    ),
    Option(
        "client_rate",
        "EVENTS_PER_S",
        "Events a second one client may send once its burst is spent; beyond it 429.",
        f"{defaults.DEFAULT_CLIENT_RATE:g}",
        _rate,
    ),
    Option(
        "client_burst",
        "EVENTS",
        "Events one client may send at once before --client-rate applies; beyond it 429.",
        str(defaults.DEFAULT_CLIENT_BURST),
        lambda raw: _int(raw, 1),
    ),
    Option(
        "max_connections",
        "N",
        "Most open connections and WebSockets together; beyond it 503.",
        str(defaults.DEFAULT_MAX_CONNECTIONS),
        lambda raw: _int(raw, 1),
    ),
    Option(
        "max_websockets",
        "N",
        "Most open WebSockets; beyond it the handshake is refused (close 1013).",
        str(defaults.DEFAULT_MAX_WEBSOCKETS),
        lambda raw: _int(raw, 1),
    ),
    Option(
        "request_timeout_s",
        "SECONDS",
        "Longest a client may take to send a request's headers and body.",
        str(defaults.DEFAULT_REQUEST_TIMEOUT_S),
        lambda raw: _seconds(raw, zero_ok=False),
    ),
    Option(
        "websocket_idle_s",
        "SECONDS",
        "A WebSocket that sends nothing for this long is closed (1001).",
        str(defaults.DEFAULT_WEBSOCKET_IDLE_S),
        lambda raw: _seconds(raw, zero_ok=False),
    ),
)
_OPTIONAL = frozenset(f.name for f in dataclasses.fields(Settings) if f.default is None)
_SEE_HELP = 'expected one listed by "console-proxy serve --help".'


def _check_unknown_variables(env: Mapping[str, str]) -> None:
    # Every CONSOLE_PROXY_ variable is a serve flag; anything else with the prefix is a typo, refused at start-up
    # (a mistyped CONSOLE_PROXY_ENABLE_TELEMETRY must not leave telemetry silently on).
    known = {env_of(option.field) for option in OPTIONS}
    for name in sorted(env):
        if name.startswith(ENV_PREFIX) and name not in known and env[name] != "":
            # Compare without the shared prefix, which would make every name look close.
            suffixes = sorted(known_name.removeprefix(ENV_PREFIX) for known_name in known)
            close = difflib.get_close_matches(name.removeprefix(ENV_PREFIX), suffixes, n=1)
            hint = f"did you mean {ENV_PREFIX}{close[0]}?" if close else _SEE_HELP
            raise SettingsError(f"{name} is set but is not a console-proxy setting; {hint}")


def settings_from(options: Mapping[str, object], env: Mapping[str, str]) -> Settings:
    """Settings from click's parsed `options` (None: not given), each falling back to `CONSOLE_PROXY_<FLAG>` in
    `env` (an empty variable counts as unset), then to its default. Raises SettingsError, one sentence; also for
    a CONSOLE_PROXY_ variable that names no setting, and for an empty boolean (flag or variable)."""
    _check_unknown_variables(env)
    values: dict[str, Any] = {}
    given: dict[str, _Raw] = {}
    for option in OPTIONS:
        given_value = options.get(option.field)
        raw = _Raw(option.field, None if given_value == () else given_value, from_env=False)
        variable = env.get(env_of(option.field))
        # An empty boolean is a mistake, not "unset": `--enable-telemetry ""` must not quietly undo
        # CONSOLE_PROXY_ENABLE_TELEMETRY=false (or the other way round) and leave telemetry on.
        if raw.value is None and variable is not None and (variable != "" or option.check is _bool):
            raw = _Raw(option.field, variable, from_env=True)
        if raw.value is None:
            continue
        if raw.value == "" and option.field in _OPTIONAL and option.check is not _bool:
            # `--upstream ""` means "not set", and beats a CONSOLE_PROXY_UPSTREAM from the environment.
            values[option.field] = None
            continue
        values[option.field] = option.check(raw)
        given[option.field] = raw
    if values.get("state_dir") is None:
        values["state_dir"] = resolve_state_dir(None, env)
    base = values.get("retry_base_s", defaults.DEFAULT_RETRY_BASE_S)
    cap = values.get("retry_cap_s", defaults.DEFAULT_RETRY_CAP_S)
    if cap < base:
        if "retry_cap_s" in given:
            raise given["retry_cap_s"].fail(f"at least --retry-base-s ({base:g})")
        raise given["retry_base_s"].fail(f"at most --retry-cap-s ({cap:g})")
    _check_queue(values, given)
    return Settings(**values)


def _check_queue(values: Mapping[str, Any], given: Mapping[str, _Raw]) -> None:
    queue = values.get("queue", defaults.DEFAULT_QUEUE)
    if queue != "sqlite" and values.get("upstream") is None:
        raise given["queue"].fail('"sqlite" in local mode (a Redis queue needs --upstream)')
    if values.get("workers", 1) > 1 and queue == "sqlite":
        raise given["workers"].fail("1 with the SQLite spool or the local file (more need --queue redis://...)")


def state_dir_of(settings: Settings) -> Path:
    """The state directory of Settings made by `settings_from`, which resolved it (the one place that does)."""
    if settings.state_dir is None:
        raise ValueError("settings_from resolves the state directory")
    return settings.state_dir


def _click_option(option: Option) -> Decorator:
    help_text = f"{option.help} Default: {option.default}. Env: {env_of(option.field)}."
    return click.option(
        flag_of(option.field),
        option.field,
        type=str,
        default=None,
        metavar=option.metavar,
        help=help_text,
        multiple=option.multiple,
    )


SERVE_OPTIONS: list[Decorator] = [_click_option(option) for option in OPTIONS]


def serve_options(function: F) -> F:
    """Decorate a click command with every `serve` flag, in the order of docs/design.md, "Command line" (help lists
    them top-down)."""
    for decorator in reversed(SERVE_OPTIONS):
        function = decorator(function)  # type: ignore[assignment]
    return function


@contextmanager
def exit_on_settings_error() -> Iterator[None]:
    """Turn a SettingsError into its one sentence on stderr and exit EXIT_CONFIG."""
    try:
        yield
    except SettingsError as error:
        click.echo(str(error), err=True)
        raise SystemExit(EXIT_CONFIG) from None

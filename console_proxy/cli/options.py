"""Flags and `CONSOLE_PROXY_<FLAG>` variables into a checked Settings, and the click options `serve` and `status`
share. The table of flags is `cli/flags.py`; the check of each value, `cli/values.py`."""

from __future__ import annotations

import dataclasses
import difflib
import ssl
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from console_proxy.cli.config_file import CONFIG_ENV, FileValue, read_config_file
from console_proxy.cli.exits import EXIT_CONFIG
from console_proxy.cli.flags import OPTIONS, Option
from console_proxy.cli.values import ENV_PREFIX, Raw, boolean, env_of, flag_of
from console_proxy.collector.settings import ENV_PREFIX as COLLECTOR_ENV_PREFIX
from console_proxy.core import settings as defaults
from console_proxy.core.errors import SettingsError
from console_proxy.core.settings import Settings, resolve_state_dir

__all__ = [
    "OPTIONS",
    "SERVE_OPTIONS",
    "Option",
    "config_file_of",
    "env_of",
    "exit_on_settings_error",
    "flag_of",
    "serve_options",
    "setting_source",
    "settings_from",
    "state_dir_of",
]

F = TypeVar("F", bound=Callable[..., Any])
Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def setting_source(
    options: Mapping[str, object], env: Mapping[str, str], field: str, file: Mapping[str, FileValue] | None = None
) -> str:
    """Where `field` was set: its flag, else its environment variable, else the config file; the flag's name when
    none is."""
    if options.get(field) is None and env.get(env_of(field), "") != "":
        return env_of(field)
    if options.get(field) is None and file and field in file:
        return file[field].where.split(": ", 1)[1] + " in " + file[field].where.split(":", 1)[0]
    return flag_of(field)


_OPTIONAL = frozenset(f.name for f in dataclasses.fields(Settings) if f.default is None)
_SEE_HELP = 'expected one listed by "console-proxy serve --help".'


def _check_unknown_variables(env: Mapping[str, str]) -> None:
    # Every CONSOLE_PROXY_ variable is a serve flag; anything else with the prefix is a typo, refused at start-up
    # (a mistyped CONSOLE_PROXY_ENABLE_TELEMETRY must not leave telemetry silently on). The collector's own
    # CONSOLE_PROXY_COLLECT_ variables are its business: a gate and a collector may share an environment.
    known = {env_of(option.field) for option in OPTIONS} | {CONFIG_ENV}
    for name in sorted(env):
        if name.startswith(COLLECTOR_ENV_PREFIX):
            continue
        if name.startswith(ENV_PREFIX) and name not in known and env[name] != "":
            # Compare without the shared prefix, which would make every name look close.
            suffixes = sorted(known_name.removeprefix(ENV_PREFIX) for known_name in known)
            close = difflib.get_close_matches(name.removeprefix(ENV_PREFIX), suffixes, n=1)
            hint = f"did you mean {ENV_PREFIX}{close[0]}?" if close else _SEE_HELP
            raise SettingsError(f"{name} is set but is not a console-proxy setting; {hint}")


def settings_from(
    options: Mapping[str, object], env: Mapping[str, str], file: Mapping[str, FileValue] | None = None
) -> Settings:
    """Settings from click's parsed `options` (None: not given), each falling back to `CONSOLE_PROXY_<FLAG>` in
    `env` (an empty variable counts as unset), then to the config `file`'s value, then to its default. Raises
    SettingsError, one sentence; also for a CONSOLE_PROXY_ variable that names no setting, and for an empty boolean
    (flag or variable)."""
    _check_unknown_variables(env)
    file = file or {}
    values: dict[str, Any] = {}
    given: dict[str, Raw] = {}
    for option in OPTIONS:
        given_value = options.get(option.field)
        raw = Raw(option.field, None if given_value == () else given_value, from_env=False)
        variable = env.get(env_of(option.field))
        # An empty boolean is a mistake, not "unset": `--enable-telemetry ""` must not quietly undo
        # CONSOLE_PROXY_ENABLE_TELEMETRY=false (or the other way round) and leave telemetry on.
        if raw.value is None and variable is not None and (variable != "" or option.check is boolean):
            raw = Raw(option.field, variable, from_env=True)
        if raw.value is None and option.field in file:
            given_file = file[option.field]
            raw = Raw(option.field, given_file.value, from_env=False, origin=given_file.where)
        if raw.value is None:
            continue
        if raw.value == "" and option.field in _OPTIONAL and option.check is not boolean:
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
    _check_tls(values, given)
    if values.get("hasura_url") is not None and values.get("hasura_endpoint") is None:
        # The relayed Hasura is the one whose UUID and version every event carries.
        values["hasura_endpoint"] = values["hasura_url"]
    return Settings(**values)


def _check_tls(values: Mapping[str, Any], given: Mapping[str, Raw]) -> None:
    certfile, keyfile = values.get("ssl_certfile"), values.get("ssl_keyfile")
    if keyfile is not None and certfile is None:
        raise given["ssl_keyfile"].fail("a key for --ssl-certfile, which is not set")
    if certfile is None:
        return
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(certfile, keyfile)
    except (ssl.SSLError, OSError) as error:
        reason = getattr(error, "reason", None) or getattr(error, "strerror", None) or type(error).__name__
        raise given["ssl_certfile"].fail(
            f"a PEM certificate whose key is in it or in --ssl-keyfile (it cannot be loaded: {reason})"
        ) from None


def _check_queue(values: Mapping[str, Any], given: Mapping[str, Raw]) -> None:
    queue = values.get("queue", defaults.DEFAULT_QUEUE)
    if queue != "sqlite" and values.get("upstream") is None:
        raise given["queue"].fail('"sqlite" in local mode (a Redis queue needs --upstream)')
    if values.get("upstream_token_file") is not None and values.get("upstream") is None:
        raise given["upstream_token_file"].fail("no token file in local mode (a token is sent to --upstream only)")
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


CONFIG_OPTION: Decorator = click.option(
    "--config",
    "config",
    type=str,
    default=None,
    metavar="FILE",
    help=(
        "A YAML file of settings, keys named like the flags (state-dir: /var/lib/console-proxy); a flag, then its"
        f" variable, beat the file. Env: {CONFIG_ENV}."
    ),
)
SERVE_OPTIONS: list[Decorator] = [CONFIG_OPTION, *(_click_option(option) for option in OPTIONS)]


def config_file_of(options: Mapping[str, object], env: Mapping[str, str]) -> dict[str, FileValue]:
    """The settings of `--config` (or CONSOLE_PROXY_CONFIG), by field; {} when neither is given."""
    given = options.get("config") or env.get(CONFIG_ENV) or None
    return read_config_file(Path(str(given)).expanduser()) if given else {}


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

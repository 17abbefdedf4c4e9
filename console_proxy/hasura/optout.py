"""Whether telemetry is on, and which setting decided it, in the order of docs/design.md, "Identity and opt-out".
Pure: the CLI config is handed in (`cli_config.resolve_telemetry` reads it from disk)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from console_proxy.core.errors import SettingsError
from console_proxy.core.settings import Settings

TRUE_VALUES = ("true", "t", "yes", "y", "1")
FALSE_VALUES = ("false", "f", "no", "n", "0")
HASURA_ENV = "HASURA_GRAPHQL_ENABLE_TELEMETRY"
DO_NOT_TRACK_ENV = "DO_NOT_TRACK"
CLI_CONFIG_KEY = "enable_telemetry"
TELEMETRY_FLAG = "--enable-telemetry"


def quote(value: object) -> str:
    """A value as it appears in a one-line message: strings in double quotes with escapes, others as JSON."""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return json.dumps(repr(value), ensure_ascii=False)


def parse_bool(value: str, name: str) -> bool:
    """Read true/t/yes/y/1 or false/f/no/n/0 in any case; anything else is a SettingsError naming `name`."""
    token = value.strip().lower()
    if token in TRUE_VALUES:
        return True
    if token in FALSE_VALUES:
        return False
    expected = ", ".join(TRUE_VALUES + FALSE_VALUES)
    raise SettingsError(f"{name} is {quote(value)}; expected one of {expected}.")


@dataclasses.dataclass(frozen=True)
class TelemetryDecision:
    """Whether telemetry is on, and `source`: the setting that decided it, for people to read."""

    enabled: bool
    source: str


def _env_value(env: Mapping[str, str], name: str) -> str | None:
    # An empty variable (`VAR=`) counts as not set, as shells and DO_NOT_TRACK's convention treat it.
    value = env.get(name)
    return value.strip() if value is not None and value.strip() else None


def decide_telemetry(
    settings: Settings,
    env: Mapping[str, str],
    cli_config: Mapping[str, Any] | None,
    *,
    setting_name: str = TELEMETRY_FLAG,
    cli_config_source: str = "the CLI config",
) -> TelemetryDecision:
    """The first set of: `--enable-telemetry`; HASURA_GRAPHQL_ENABLE_TELEMETRY; (cli mode) `enable_telemetry`
    in the CLI config; DO_NOT_TRACK (true means off). Nothing set: on.

    Only the deciding source is read, so a shadowed source cannot stop start-up. `setting_name` names where
    `settings.enable_telemetry` came from (the flag or its CONSOLE_PROXY_ variable); `cli_config_source` names
    the CLI config file.
    """
    if settings.enable_telemetry is not None:
        flag_text = "true" if settings.enable_telemetry else "false"
        return TelemetryDecision(settings.enable_telemetry, f"{setting_name}={flag_text}")
    hasura = _env_value(env, HASURA_ENV)
    if hasura is not None:
        return TelemetryDecision(parse_bool(hasura, HASURA_ENV), f"{HASURA_ENV}={hasura}")
    if settings.mode == "cli" and cli_config is not None and cli_config.get(CLI_CONFIG_KEY) is not None:
        value = cli_config[CLI_CONFIG_KEY]
        name = f"{CLI_CONFIG_KEY} in {cli_config_source}"
        if isinstance(value, bool):
            return TelemetryDecision(value, name)
        if isinstance(value, str):
            return TelemetryDecision(parse_bool(value, name), name)
        expected = ", ".join(TRUE_VALUES + FALSE_VALUES)
        raise SettingsError(f"{name} is {quote(value)}; expected true or false, or one of {expected} as a string.")
    do_not_track = _env_value(env, DO_NOT_TRACK_ENV)
    if do_not_track is not None:
        return TelemetryDecision(not parse_bool(do_not_track, DO_NOT_TRACK_ENV), f"{DO_NOT_TRACK_ENV}={do_not_track}")
    return TelemetryDecision(True, "default (nothing set)")


def needs_cli_config(settings: Settings, env: Mapping[str, str]) -> bool:
    """Whether the CLI config can decide, so must be read: cli mode, and neither the flag nor
    HASURA_GRAPHQL_ENABLE_TELEMETRY set (a shadowed source is never read, so it cannot stop start-up)."""
    return settings.mode == "cli" and settings.enable_telemetry is None and _env_value(env, HASURA_ENV) is None

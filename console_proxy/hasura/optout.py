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
# The only values of DO_NOT_TRACK that do not turn telemetry off (an empty one counts as not set).
DO_NOT_TRACK_TRACKING = ("0", "false")
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
    # Which kind of setting decided: "flag" (or its variable, or the config file), HASURA_ENV, "cli_config",
    # DO_NOT_TRACK_ENV or "default"; for saying how to change it.
    setting: str = dataclasses.field(default="default", compare=False)

    def how_to_turn_on(self) -> str:
        """One sentence for a person who sees telemetry off: what to change, where."""
        if self.setting == HASURA_ENV:
            return f"set {HASURA_ENV}=true (or unset it) where console-proxy starts."
        if self.setting == "cli_config":
            return f'set "{CLI_CONFIG_KEY}": true in the Hasura CLI\'s config file ({self.source.split(" in ", 1)[1]}).'
        if self.setting == DO_NOT_TRACK_ENV:
            return f"unset {DO_NOT_TRACK_ENV} where console-proxy starts, or start it with {TELEMETRY_FLAG} true."
        return f"start console-proxy with {TELEMETRY_FLAG} true (it is now set by {self.source.split('=', 1)[0]})."


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
    in the CLI config; DO_NOT_TRACK (set to anything but 0 or false means off, never an error). Nothing set: on.

    Only the deciding source is read, so a shadowed source cannot stop start-up. `setting_name` names where
    `settings.enable_telemetry` came from (the flag or its CONSOLE_PROXY_ variable); `cli_config_source` names
    the CLI config file.
    """
    if settings.enable_telemetry is not None:
        flag_text = "true" if settings.enable_telemetry else "false"
        return TelemetryDecision(settings.enable_telemetry, f"{setting_name}={flag_text}", "flag")
    hasura = _env_value(env, HASURA_ENV)
    if hasura is not None:
        return TelemetryDecision(parse_bool(hasura, HASURA_ENV), f"{HASURA_ENV}={hasura}", HASURA_ENV)
    if settings.mode == "cli" and cli_config is not None and cli_config.get(CLI_CONFIG_KEY) is not None:
        value = cli_config[CLI_CONFIG_KEY]
        name = f"{CLI_CONFIG_KEY} in {cli_config_source}"
        if isinstance(value, bool):
            return TelemetryDecision(value, name, "cli_config")
        if isinstance(value, str):
            return TelemetryDecision(parse_bool(value, name), name, "cli_config")
        expected = ", ".join(TRUE_VALUES + FALSE_VALUES)
        raise SettingsError(f"{name} is {quote(value)}; expected true or false, or one of {expected} as a string.")
    do_not_track = _env_value(env, DO_NOT_TRACK_ENV)
    if do_not_track is not None:
        # The convention (consoledonottrack.com): set means off, whatever the value; only 0 and false say "track".
        enabled = do_not_track.lower() in DO_NOT_TRACK_TRACKING
        return TelemetryDecision(enabled, f"{DO_NOT_TRACK_ENV}={do_not_track}", DO_NOT_TRACK_ENV)
    return TelemetryDecision(True, "default (nothing set)")


def needs_cli_config(settings: Settings, env: Mapping[str, str]) -> bool:
    """Whether the CLI config can decide, so must be read: cli mode, and neither the flag nor
    HASURA_GRAPHQL_ENABLE_TELEMETRY set (a shadowed source is never read, so it cannot stop start-up)."""
    return settings.mode == "cli" and settings.enable_telemetry is None and _env_value(env, HASURA_ENV) is None

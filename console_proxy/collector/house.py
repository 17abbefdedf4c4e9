"""The few names the collector borrows from the rest of console-proxy, in one place.

When they move, this file is the one to change.
"""

from __future__ import annotations

from console_proxy.core.errors import ConsoleProxyError, RulesError, SettingsError
from console_proxy.core.events import (
    CI_NAMES,
    CLI_TOPIC,
    CONSOLE_TEST_TOPIC,
    CONSOLE_TOPIC,
    SERVER_METRICS_TOPIC,
    valid_uuid,
    valid_version,
)
from console_proxy.core.settings import resolve_state_dir
from console_proxy.core.strictjson import dumps
from console_proxy.rules import RouteRules, load_rules

__all__ = [
    "CI_NAMES",
    "CLI_TOPIC",
    "CONSOLE_TEST_TOPIC",
    "CONSOLE_TOPIC",
    "SERVER_METRICS_TOPIC",
    "ConsoleProxyError",
    "RouteRules",
    "RulesError",
    "SettingsError",
    "dumps",
    "load_rules",
    "resolve_state_dir",
    "valid_uuid",
    "valid_version",
]

"""The few names the collector borrows from the rest of console-proxy, in one place.

They are about to move (console_proxy.core.*); when they do, this file is the one to change.
"""

from __future__ import annotations

from console_proxy.errors import ConsoleProxyError, RulesError, SettingsError
from console_proxy.events import (
    CLI_TOPIC,
    CONSOLE_TEST_TOPIC,
    CONSOLE_TOPIC,
    SERVER_METRICS_TOPIC,
    valid_uuid,
    valid_version,
)
from console_proxy.fastjson import dumps, loads
from console_proxy.rules import RouteRules, load_rules
from console_proxy.settings import resolve_state_dir

__all__ = [
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
    "loads",
    "resolve_state_dir",
    "valid_uuid",
    "valid_version",
]

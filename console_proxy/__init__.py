"""console-proxy: a privacy gate for a React-Redux console's usage telemetry."""

from __future__ import annotations

from console_proxy._version import __version__
from console_proxy.app import create_app
from console_proxy.errors import ConsoleProxyError, RulesError, SettingsError
from console_proxy.guards import trusted_hosts
from console_proxy.middleware import TelemetryMiddleware
from console_proxy.rules.route_rules import RouteRules, RulesHolder, load_rules
from console_proxy.settings import Settings

__all__ = [
    "ConsoleProxyError",
    "RouteRules",
    "RulesError",
    "RulesHolder",
    "Settings",
    "SettingsError",
    "TelemetryMiddleware",
    "__version__",
    "create_app",
    "load_rules",
    "trusted_hosts",
]

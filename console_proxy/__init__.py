"""console-proxy: a privacy gate for a React-Redux console's usage telemetry.

The public names load on first use (PEP 562), so that `console-proxy rules check` or `import console_proxy` for
`load_rules` does not import the ASGI stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from console_proxy._version import __version__

if TYPE_CHECKING:
    from console_proxy.asgi.app import create_app
    from console_proxy.asgi.hosts import trusted_hosts
    from console_proxy.asgi.middleware import TelemetryMiddleware
    from console_proxy.asgi.runtime import TelemetryRuntime
    from console_proxy.core.errors import ConsoleProxyError, RulesError, SettingsError
    from console_proxy.core.settings import Settings
    from console_proxy.rules.route_rules import RouteRules, RulesHolder, load_rules

__all__ = [
    "ConsoleProxyError",
    "RouteRules",
    "RulesError",
    "RulesHolder",
    "Settings",
    "SettingsError",
    "TelemetryMiddleware",
    "TelemetryRuntime",
    "__version__",
    "create_app",
    "load_rules",
    "trusted_hosts",
]

# Where each public name lives; the one table that `__getattr__` and the type checker's imports above agree on.
_HOMES = {
    "ConsoleProxyError": "console_proxy.core.errors",
    "RouteRules": "console_proxy.rules.route_rules",
    "RulesError": "console_proxy.core.errors",
    "RulesHolder": "console_proxy.rules.route_rules",
    "Settings": "console_proxy.core.settings",
    "SettingsError": "console_proxy.core.errors",
    "TelemetryMiddleware": "console_proxy.asgi.middleware",
    "TelemetryRuntime": "console_proxy.asgi.runtime",
    "create_app": "console_proxy.asgi.app",
    "load_rules": "console_proxy.rules.route_rules",
    "trusted_hosts": "console_proxy.asgi.hosts",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'console_proxy' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

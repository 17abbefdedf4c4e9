"""console-proxy: a privacy gate for a React-Redux console's usage telemetry."""

from __future__ import annotations

from console_proxy.errors import ConsoleProxyError, RulesError, SettingsError

__version__ = "0.1.0"

__all__ = [
    "ConsoleProxyError",
    "RulesError",
    "SettingsError",
    "__version__",
]

"""The one exception family of console-proxy."""

from __future__ import annotations


class ConsoleProxyError(Exception):
    """Base of every error console-proxy raises on purpose."""


class RulesError(ConsoleProxyError):
    """A rules file was refused; `messages` holds one `FILE:LINE:COL: message` line per problem."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("\n".join(messages))
        self.messages = list(messages)


class SettingsError(ConsoleProxyError):
    """A flag, environment variable or configuration value is invalid; the message is one sentence."""

"""The one exception family of console-proxy.

    ConsoleProxyError          every error console-proxy raises on purpose
    ├── RulesError             a rules file was refused (FILE:LINE:COL: message lines)
    ├── SettingsError          a flag, variable or config value is invalid (one sentence)
    └── Refusal                a batch is not taken; answered with `status` and a fixed body
        ├── BatchError         the batch itself is wrong (400, 413, 415): never retried as it is
        └── SinkRefused        the sink cannot take it now (503 and Retry-After): retry later

A refusal carries its metric label (`reason` / `label`), so it is counted the same way wherever it is raised.
A refusal is raised as a new instance each time: a shared instance would keep every raise's traceback (and
the request bodies in its frames) alive.
"""

from __future__ import annotations

import json


class ConsoleProxyError(Exception):
    """Base of every error console-proxy raises on purpose."""


class RulesError(ConsoleProxyError):
    """A rules file was refused; `messages` holds one `FILE:LINE:COL: message` line per problem."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("\n".join(messages))
        self.messages = list(messages)


class SettingsError(ConsoleProxyError):
    """A flag, environment variable or configuration value is invalid; the message is one sentence."""


class Refusal(ConsoleProxyError):  # noqa: N818 -- an answer, not a failure
    """A batch that is not taken: `status` to answer, `label` to count it under in `batches_rejected`."""

    status: int
    label: str


class BatchError(Refusal):
    """A batch refused as a whole: `status` to answer, a fixed `body` that never echoes input, a metric `reason`."""

    def __init__(self, status: int, error: str, reason: str) -> None:
        super().__init__(error)
        self.status = status
        self.body = json.dumps({"error": error}, separators=(",", ":")).encode()
        self.reason = reason
        self.label = reason


class SinkRefused(Refusal):
    """The sink cannot take a batch now (full, unwritable, shutting down); answer `status` with `Retry-After`.

    `reason` is the short text of the answer's body, `label` the reason as a metric label.
    """

    def __init__(self, reason: str, *, label: str = "sink_refused", status: int = 503, retry_after: int = 1) -> None:
        super().__init__(reason)
        self.reason = reason
        self.label = label
        self.status = status
        self.retry_after = retry_after

    def copy(self) -> SinkRefused:
        """The same refusal as a new exception, for each of several waiters."""
        return SinkRefused(self.reason, label=self.label, status=self.status, retry_after=self.retry_after)

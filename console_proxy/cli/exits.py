"""Every exit code of the `console-proxy` command, in one place."""

from __future__ import annotations

EXIT_OK = 0
# The server could not start or stopped on an error (the port is taken, say); `rules check` found problems.
EXIT_SERVER = 1
EXIT_RULES_CHECK = 1
# A flag, CONSOLE_PROXY_ variable or config value is bad (one sentence on stderr).
EXIT_CONFIG = 2
# `serve` was given a rules file it cannot use (FILE:LINE:COL: lines on stderr).
EXIT_RULES = 3
# `serve --queue-require-aof true` found a Redis queue without appendonly (one sentence on stderr).
EXIT_QUEUE = 4
# `dead-letters`: no queue where it was told to look (a mistyped --state-dir or --queue).
EXIT_NO_QUEUE = 1
# `dead-letters purge` was not confirmed (no --yes, and no "y" typed).
EXIT_NOT_CONFIRMED = 1
# `console-proxy hasura`: the Hasura CLI was not found, or could not be run (as a shell says it).
EXIT_CANNOT_RUN = 126
EXIT_NOT_FOUND = 127

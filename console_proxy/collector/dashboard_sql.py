"""The dashboard's aggregates, counted by the store in plain SQL that both dialects run (docs/collector.md shows
the same queries). Only counts leave the store; the threshold is applied by `dashboard.figures`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from console_proxy.collector.dashboard import Aggregates
from console_proxy.collector.house import CLI_TOPIC, CONSOLE_TOPIC, SERVER_METRICS_TOPIC
from console_proxy.collector.store import SqlStore

# Every event with the installation it stands for: a console's server (or its CLI), a server, a CLI.
_ALL = """
SELECT topic, "timestamp", coalesce(server_uuid, cli_uuid) AS installation FROM console_events WHERE "timestamp" >= {p}
UNION ALL SELECT topic, "timestamp", server_uuid FROM server_metrics WHERE "timestamp" >= {p}
UNION ALL SELECT topic, "timestamp", coalesce(cli_uuid, server_uuid) FROM cli_events WHERE "timestamp" >= {p}
"""
_INSTALLATIONS = "SELECT count(DISTINCT installation) FROM (" + _ALL + ") AS e"
_BY_DAY = (
    'SELECT CAST("timestamp" AS DATE) AS day, topic, count(*), count(DISTINCT installation) FROM ('
    + _ALL
    + ") AS e GROUP BY 1, 2"
)
_CONSOLE = """
SELECT {column}, count(*), count(DISTINCT coalesce(server_uuid, cli_uuid)) FROM console_events
WHERE topic = {p} AND "timestamp" >= {p} GROUP BY {column}
"""
_SERVER_VERSIONS = """
SELECT server_version, count(DISTINCT server_uuid) FROM (
  SELECT server_version, server_uuid FROM console_events WHERE topic = {p} AND "timestamp" >= {p}
  UNION ALL SELECT server_version, server_uuid FROM server_metrics WHERE topic = {p} AND "timestamp" >= {p}
) AS v GROUP BY server_version
"""
_CLI_VERSIONS = """
SELECT cli_version, count(DISTINCT cli_uuid) FROM cli_events WHERE topic = {p} AND "timestamp" >= {p}
GROUP BY cli_version
"""
_COMMANDS = """
SELECT command, count(*), count(DISTINCT cli_uuid), sum(CASE WHEN is_error THEN 1 ELSE 0 END),
       count(DISTINCT CASE WHEN is_error THEN cli_uuid END)
FROM cli_events WHERE topic = {p} AND "timestamp" >= {p} GROUP BY command
"""
_LATEST_METRICS = """
SELECT server_uuid, metrics FROM (
  SELECT server_uuid, metrics, row_number() OVER (PARTITION BY server_uuid ORDER BY "timestamp" DESC) AS n
  FROM server_metrics WHERE topic = {p} AND "timestamp" >= {p} AND server_uuid IS NOT NULL
) AS m WHERE n = 1
"""


def _metrics(value: Any) -> Mapping[str, Any]:
    decoded = json.loads(value) if isinstance(value, str) else value
    return decoded if isinstance(decoded, dict) else {}


def _day(value: Any) -> date:
    return value.date() if isinstance(value, datetime) else value


def read_aggregates(store: SqlStore, since: datetime) -> Aggregates:
    """Count what the dashboard shows over the events stamped from `since` on."""
    p = store.param
    t = since.replace(tzinfo=None)
    rows = store.query
    by_day = [(_day(d), str(topic), int(n), int(i)) for d, topic, n, i in rows(_BY_DAY.format(p=p), [t, t, t])]
    return Aggregates(
        installations=int(rows(_INSTALLATIONS.format(p=p), [t, t, t])[0][0]),
        by_day=by_day,
        pages=[(str(u), int(n), int(i)) for u, n, i in rows(_CONSOLE.format(p=p, column="url"), [CONSOLE_TOPIC, t])],
        actions=[
            (str(a), int(n), int(i)) for a, n, i in rows(_CONSOLE.format(p=p, column="event_type"), [CONSOLE_TOPIC, t])
        ],
        server_versions=[
            (v, int(i)) for v, i in rows(_SERVER_VERSIONS.format(p=p), [CONSOLE_TOPIC, t, SERVER_METRICS_TOPIC, t])
        ],
        cli_versions=[(v, int(i)) for v, i in rows(_CLI_VERSIONS.format(p=p), [CLI_TOPIC, t])],
        commands=[
            (str(c), int(n), int(i), int(e or 0), int(ei))
            for c, n, i, e, ei in rows(_COMMANDS.format(p=p), [CLI_TOPIC, t])
        ],
        latest_metrics=[(str(u), _metrics(m)) for u, m in rows(_LATEST_METRICS.format(p=p), [SERVER_METRICS_TOPIC, t])],
    )

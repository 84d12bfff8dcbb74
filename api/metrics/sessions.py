"""Session statistics (SPEC 6.2 /v1/sessions): counts and duration statistics of the sessions
that start in [from, to), optionally of one channel; overall and per channel."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb

from api.metrics.filters import rows_as_dicts

# bounce_rate: share of sessions with a single event. Durations are seconds; quantiles
# interpolate like DuckDB `median`.
SESSIONS_SQL = """
SELECT {group} count(*) AS sessions, count(DISTINCT customer_id) AS customers,
    avg(duration_s) AS mean_duration_s, median(duration_s) AS median_duration_s,
    quantile_cont(duration_s, 0.9) AS p90_duration_s, max(duration_s) AS max_duration_s,
    avg(event_count) AS mean_events, avg(page_views) AS mean_page_views,
    count(*) FILTER (WHERE event_count = 1) / nullif(count(*), 0) AS bounce_rate
FROM sessions
WHERE ($since IS NULL OR start >= CAST($since AS TIMESTAMPTZ))
  AND ($until IS NULL OR start < CAST($until AS TIMESTAMPTZ))
  AND ($channel IS NULL OR channel = $channel)
{group_by}
"""


def session_stats(
    con: duckdb.DuckDBPyConnection,
    since: datetime | None,
    until: datetime | None,
    channel: str | None,
) -> dict[str, Any]:
    """GET /v1/sessions: totals plus "by_channel" (sessions descending, then channel)."""
    params = {
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "channel": channel,
    }
    total = rows_as_dicts(con.execute(SESSIONS_SQL.format(group="", group_by=""), params))[0]
    by_channel = rows_as_dicts(con.execute(
        SESSIONS_SQL.format(group="channel,", group_by="GROUP BY channel ORDER BY 2 DESC, 1"),
        params,
    ))
    for row in [total, *by_channel]:
        row["sessions"], row["customers"] = int(row["sessions"]), int(row["customers"])
    return {**total, "by_channel": by_channel}

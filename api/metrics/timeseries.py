"""Time series per channel (SPEC 5, our design): per UTC day and channel, the events and the
distinct customers with an event, for events in [from, to) of the filtered customers."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

import duckdb

from api.metrics import prepared
from api.metrics.filters import CustomerFilter, StageModel, class_where, has_window, restrict

# Events come from event_stages of one model (every event is there once per model, with its
# customer); the customer filter's first_seen window is not used here, `since/until` is.
TIMESERIES_SQL = """
SELECT strftime(date_trunc('day', es.timestamp), '%Y-%m-%d') AS date, es.channel,
       count(*) AS events, count(DISTINCT es.customer_id) AS customers
FROM event_stages es
WHERE es.model = $model AND {restrict}
  AND ($since IS NULL OR es.timestamp >= CAST($since AS TIMESTAMPTZ))
  AND ($until IS NULL OR es.timestamp < CAST($until AS TIMESTAMPTZ))
  AND ($channel IS NULL OR es.channel = $channel)
GROUP BY ALL
ORDER BY date, es.channel
"""

# The snapshot's per-class daily pre-aggregate: exact when from/to fall on UTC midnights (a day
# is then wholly in or out) and distinct customers add up over classes (disjoint).
DAILY_SQL = """
SELECT strftime(d.day, '%Y-%m-%d') AS date, d.channel,
       sum(d.events) AS events, sum(d.customers) AS customers
FROM __j_daily d
WHERE d.model = $model AND {restrict}
  AND ($since IS NULL OR d.day >= CAST($since AS TIMESTAMPTZ))
  AND ($until IS NULL OR d.day < CAST($until AS TIMESTAMPTZ))
  AND ($channel IS NULL OR d.channel = $channel)
GROUP BY d.day, d.channel
ORDER BY date, d.channel
"""


def _midnight(value: datetime | None) -> bool:
    return value is None or value.astimezone(UTC).time() == time(0)


def timeseries(
    con: duckdb.DuckDBPyConnection,
    model: StageModel,
    f: CustomerFilter,
    since: datetime | None,
    until: datetime | None,
    channel: str | None,
) -> list[dict[str, Any]]:
    """GET /v1/timeseries: [{"date", "channel", "events", "customers"}] by date, then channel."""
    prepared.ensure(con)
    if _midnight(since) and _midnight(until) and not has_window(f):
        where, params = class_where(f, "d.k")
        sql = DAILY_SQL.format(restrict=where)
    else:
        where, params = restrict(f, "es.customer_id")
        sql = TIMESERIES_SQL.format(restrict=where)
    params |= {
        "model": model.name,
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "channel": channel,
    }
    rows = con.execute(sql, params).fetchall()
    return [{"date": d, "channel": c, "events": int(e), "customers": int(n)} for d, c, e, n in rows]

"""Time series per channel (SPEC 5, our design): per UTC day and channel, the events and the
distinct customers with an event, for events in [from, to) of the filtered customers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb

from api.metrics.filters import CustomerFilter, StageModel, restrict

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


def timeseries(
    con: duckdb.DuckDBPyConnection,
    model: StageModel,
    f: CustomerFilter,
    since: datetime | None,
    until: datetime | None,
    channel: str | None,
) -> list[dict[str, Any]]:
    """GET /v1/timeseries: [{"date", "channel", "events", "customers"}] by date, then channel."""
    where, params = restrict(f, "es.customer_id")
    params |= {
        "model": model.name,
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "channel": channel,
    }
    rows = con.execute(TIMESERIES_SQL.format(restrict=where), params).fetchall()
    return [{"date": d, "channel": c, "events": int(e), "customers": int(n)} for d, c, e, n in rows]

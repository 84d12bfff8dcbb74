"""Paths (SPEC 5 "top touchpoint sequences", our design): per customer, the first `steps` entries
of its sequence of own stages (events without one skipped) or of event names, in event order
(time, then event_id), with consecutive repeats collapsed (Page Viewed x5 is one step); then the
most common such sequences."""

from __future__ import annotations

from typing import Any, Literal

import duckdb

from api.metrics import prepared
from api.metrics.filters import CustomerFilter, StageModel, class_where, has_window, restrict

PathBy = Literal["stage", "event"]
COLUMNS: dict[str, str] = {"stage": "own_stage", "event": "event"}

PATHS_SQL = """
WITH seq AS (
    SELECT es.customer_id, es.{column} AS step, es.timestamp, es.event_id,
        lag(es.{column}) OVER (PARTITION BY es.customer_id ORDER BY es.timestamp, es.event_id)
            AS previous
    FROM event_stages es
    WHERE es.model = $model AND es.{column} IS NOT NULL AND {restrict}
),
numbered AS (
    SELECT customer_id, step, row_number() OVER (
        PARTITION BY customer_id ORDER BY timestamp, event_id) AS n
    FROM seq WHERE previous IS NULL OR previous <> step
),
per_customer AS (
    SELECT customer_id, list(step ORDER BY n) AS path FROM numbered WHERE n <= $steps
    GROUP BY customer_id
)
SELECT path, count(*) AS customers, count(*) / sum(count(*)) OVER () AS share
FROM per_customer GROUP BY path
ORDER BY customers DESC, path
LIMIT $top
"""

# The same from the snapshot's per-class counts of each customer's first 20 collapsed steps
# (or, for short paths, of exactly that many).
CLASS_SQL = """
SELECT path[1:$steps] AS p, CAST(sum(customers) AS BIGINT) AS n,
       sum(customers) / sum(sum(customers)) OVER () AS share
FROM __j_paths
WHERE model = $model AND kind = $by AND steps = $stored AND {restrict}
GROUP BY p
ORDER BY n DESC, p
LIMIT $top
"""


def paths(
    con: duckdb.DuckDBPyConnection,
    model: StageModel,
    f: CustomerFilter,
    by: PathBy,
    steps: int,
    top: int,
) -> list[dict[str, Any]]:
    """GET /v1/paths: [{"path": [...], "customers", "share"}], customers descending then path."""
    prepared.ensure(con)
    if has_window(f) or steps > prepared.MAX_PATH_STEPS:
        where, params = restrict(f, "es.customer_id")
        sql = PATHS_SQL.format(restrict=where, column=COLUMNS[by])
    else:
        where, params = class_where(f)
        sql = CLASS_SQL.format(restrict=where)
        stored = steps if steps <= prepared.PREFIX_STEPS else prepared.MAX_PATH_STEPS
        params |= {"by": by, "stored": stored}
    rows = con.execute(sql, {**params, "model": model.name, "steps": steps, "top": top}).fetchall()
    return [{"path": p, "customers": int(n), "share": s} for p, n, s in rows]

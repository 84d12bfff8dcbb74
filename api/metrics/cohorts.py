"""Retention cohorts (SPEC 5, our design): customers grouped by the UTC week (Monday) of their
first_seen; for week n = 0, 1, ... after the cohort's week start, the share of the cohort with
at least one event in that week. Weeks that start after the watermark are null (not yet seen)."""

from __future__ import annotations

from typing import Any

import duckdb

from api.metrics import prepared
from api.metrics.filters import (
    CustomerFilter,
    StageModel,
    class_where,
    customer_sql,
    has_window,
    iso,
)

WEEK_S = 7 * 86_400

# Activity comes from event_stages of one model: it carries the customer of every event.
COHORTS_SQL = f"""
WITH fc AS ({{customers}}),
c AS (SELECT customer_id, date_trunc('week', first_seen) AS cohort FROM fc),
active AS (
    SELECT c.cohort, floor((epoch(es.timestamp) - epoch(c.cohort)) / {WEEK_S})::INTEGER AS week,
           count(DISTINCT es.customer_id) AS active
    FROM event_stages es JOIN c USING (customer_id)
    WHERE es.model = $model
    GROUP BY ALL
),
sizes AS (SELECT cohort, count(*) AS customers FROM c GROUP BY cohort)
SELECT timezone('UTC', s.cohort) AS cohort, s.customers,
    list(CASE WHEN epoch(s.cohort) + w.week * {WEEK_S} > epoch((SELECT max(watermark) FROM meta))
              THEN NULL ELSE coalesce(a.active, 0) / s.customers END ORDER BY w.week) AS retention
FROM sizes s
CROSS JOIN (SELECT range AS week FROM range($weeks)) w
LEFT JOIN active a ON a.cohort = s.cohort AND a.week = w.week
GROUP BY s.cohort, s.customers
ORDER BY s.cohort
"""

# The same from the snapshot's per-class pre-aggregates (distinct customers add up over classes).
CLASS_SQL = f"""
WITH sizes AS (
    SELECT cohort, CAST(sum(customers) AS BIGINT) AS customers FROM __j_csize
    WHERE {{restrict}} GROUP BY cohort
),
active AS (
    SELECT cohort, week, CAST(sum(active) AS BIGINT) AS active FROM __j_cactive
    WHERE model = $model AND {{restrict}} GROUP BY cohort, week
)
SELECT timezone('UTC', s.cohort) AS cohort, s.customers,
    list(CASE WHEN epoch(s.cohort) + w.week * {WEEK_S} > epoch((SELECT max(watermark) FROM meta))
              THEN NULL ELSE coalesce(a.active, 0) / s.customers END ORDER BY w.week) AS retention
FROM sizes s
CROSS JOIN (SELECT range AS week FROM range($weeks)) w
LEFT JOIN active a ON a.cohort = s.cohort AND a.week = w.week
GROUP BY s.cohort, s.customers
ORDER BY s.cohort
"""


def cohorts(
    con: duckdb.DuckDBPyConnection, model: StageModel, f: CustomerFilter, weeks: int
) -> list[dict[str, Any]]:
    """GET /v1/cohorts: [{"cohort" (week start), "customers", "retention": [share week 0..]}]."""
    prepared.ensure(con)
    if has_window(f):
        customers, params = customer_sql(f)
        sql = COHORTS_SQL.format(customers=customers)
    else:
        where, params = class_where(f)
        sql = CLASS_SQL.format(restrict=where)
    rows = con.execute(sql, {**params, "model": model.name, "weeks": weeks}).fetchall()
    return [{"cohort": iso(c), "customers": int(n), "retention": r} for c, n, r in rows]

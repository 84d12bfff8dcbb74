"""SPEC 5 Funnel: per stage, the filtered customers reaching it, conversion ratios and the median
time from first_seen to entering the stage."""

from __future__ import annotations

from typing import Any

import duckdb

from api.metrics.filters import CustomerFilter, StageModel, customer_sql, rows_as_dicts

# Ratios are NULL when their denominator is 0; stage 1's conversion_from_previous is
# customers(1)/customers(1), i.e. 1.0, or NULL when nobody is in the funnel.
FUNNEL_SQL = """
WITH fc AS ({customers}),
reached AS (
    SELECT se.stage, count(*) AS customers,
           median(epoch(se.entered_at) - epoch(fc.first_seen)) AS median_time_to_stage_s
    FROM stage_entries se JOIN fc USING (customer_id)
    WHERE se.model = $model
    GROUP BY se.stage
),
per_stage AS (
    SELECT m.stage, m.stage_index, coalesce(r.customers, 0) AS customers, r.median_time_to_stage_s
    FROM models m LEFT JOIN reached r USING (stage)
    WHERE m.model = $model
),
ratios AS (
    SELECT *,
        coalesce(lag(customers) OVER w, customers) AS previous,
        first_value(customers) OVER w AS first
    FROM per_stage
    WINDOW w AS (ORDER BY stage_index)
)
SELECT stage, customers,
    CASE WHEN previous = 0 THEN NULL ELSE customers / previous END AS conversion_from_previous,
    CASE WHEN first = 0 THEN NULL ELSE customers / first END AS conversion_from_first,
    median_time_to_stage_s
FROM ratios
ORDER BY stage_index
"""


def funnel(con: duckdb.DuckDBPyConnection, model: StageModel, f: CustomerFilter) -> dict[str, Any]:
    """GET /v1/funnel: {"model", "stages": [...]} in stage order."""
    customers, params = customer_sql(f)
    cur = con.execute(FUNNEL_SQL.format(customers=customers), {**params, "model": model.name})
    stages = rows_as_dicts(cur)
    for s in stages:
        s["customers"] = int(s["customers"])
    return {"model": model.name, "stages": stages}

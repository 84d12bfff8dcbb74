"""SPEC 5 KPIs (customers, events, conversion, retention, churn, NPS/CSAT/CES) and emotion per
stage, over the filtered customers of one model."""

from __future__ import annotations

from typing import Any

import duckdb

from api.metrics import prepared
from api.metrics.filters import (
    CustomerFilter,
    StageModel,
    class_where,
    has_window,
    iso,
    reach_where,
    restrict,
    rows_as_dicts,
)

# Survey responses of one model, once per event, scores outside the survey's scale dropped
# (nps 0..10, csat 1..5, ces 1..7). `norm` is the SPEC 5 emotion in [-1, 1].
RESPONSES_CTE = f"""
responses AS (
    SELECT survey, score, stage_at, {prepared.NORM} AS norm
    FROM (
        SELECT s.event_id, lower(any_value(s.survey)) AS survey, any_value(s.score) AS score,
               any_value(s.stage_at) AS stage_at
        FROM surveys s
        WHERE s.model = $model AND {{restrict}}
        GROUP BY s.event_id
    ){prepared.SCALE}
)"""

# The same from the snapshot's responses, already once per event, checked, with their class.
RESPONSES_CLASS_CTE = """
responses AS (
    SELECT survey, score, stage_at, norm FROM __j_responses s
    WHERE s.model = $model AND {restrict}
)"""

# SPEC 4.2 lapsed: the last event is more than lapse_after before the watermark (none: not lapsed).
LAPSED_EXPR = "coalesce(epoch({watermark}) - epoch({last_seen}) > {lapse_after_s}, FALSE)"

# A customer's stage is its highest stage_index (`si` of the per-customer table of the snapshot,
# api.metrics.prepared); lapsed = last event more than lapse_after_s
# before the watermark; churned = lapsed and at or past conversion.
KPI_SQL = """
WITH mi AS (
    SELECT max(stage_index) FILTER (WHERE stage = $conversion) AS conv_idx,
           max(lapse_after_s) AS lapse_after_s
    FROM models WHERE model = $model
),
nx AS (
    SELECT min(m.stage_index) AS next_idx FROM models m, mi
    WHERE m.model = $model AND m.stage_index > mi.conv_idx
),
wm AS (SELECT max(watermark) AS watermark FROM meta),
{agg},
{responses},
surveys_agg AS (
    SELECT
        100.0 * (count(*) FILTER (WHERE survey = 'nps' AND score >= 9)
                 - count(*) FILTER (WHERE survey = 'nps' AND score <= 6))
            / nullif(count(*) FILTER (WHERE survey = 'nps'), 0) AS nps,
        count(*) FILTER (WHERE survey = 'nps') AS nps_responses,
        100.0 * count(*) FILTER (WHERE survey = 'csat' AND score >= 4)
            / nullif(count(*) FILTER (WHERE survey = 'csat'), 0) AS csat,
        count(*) FILTER (WHERE survey = 'csat') AS csat_responses,
        avg(score) FILTER (WHERE survey = 'ces') AS ces,
        count(*) FILTER (WHERE survey = 'ces') AS ces_responses
    FROM responses
)
SELECT agg.*,
    converted / nullif(customers, 0) AS conversion_rate,
    CASE WHEN (SELECT next_idx FROM nx) IS NULL THEN NULL
         ELSE retained / nullif(converted, 0) END AS retention_rate,
    churned / nullif(converted, 0) AS churn_rate,
    surveys_agg.*,
    timezone('UTC', (SELECT watermark FROM wm)) AS watermark
FROM agg, surveys_agg
"""

# agg with a first_seen window: one scan of the per-customer table.
AGG_CUSTOMERS = """
per AS (
    SELECT c.event_count, c.si,
           {lapsed} AS lapsed
    FROM __j_reach c, wm, mi
    WHERE c.model = $model AND {where}
),
agg AS (
    SELECT count(*) AS customers, coalesce(sum(event_count), 0) AS events,
        count(*) FILTER (WHERE si >= (SELECT conv_idx FROM mi)) AS converted,
        count(*) FILTER (WHERE si >= (SELECT next_idx FROM nx)) AS retained,
        count(*) FILTER (WHERE si >= (SELECT conv_idx FROM mi) AND lapsed) AS churned,
        count(*) FILTER (WHERE lapsed) AS lapsed
    FROM per
)"""

# agg otherwise: customer counts per (class, stage reached, lapsed) add up.
AGG_CLASSES = """
agg AS (
    SELECT CAST(coalesce(sum(customers), 0) AS BIGINT) AS customers,
        coalesce(sum(events), 0) AS events,
        CAST(coalesce(sum(customers) FILTER (WHERE si >= (SELECT conv_idx FROM mi)), 0) AS BIGINT)
            AS converted,
        CAST(coalesce(sum(customers) FILTER (WHERE si >= (SELECT next_idx FROM nx)), 0) AS BIGINT)
            AS retained,
        CAST(coalesce(sum(customers) FILTER (WHERE si >= (SELECT conv_idx FROM mi) AND lapsed), 0)
            AS BIGINT) AS churned,
        CAST(coalesce(sum(customers) FILTER (WHERE lapsed), 0) AS BIGINT) AS lapsed
    FROM __j_kpi c WHERE c.model = $model AND {where}
)"""

EMOTION_SQL = """
WITH {responses}
SELECT m.stage, avg(r.norm) AS emotion, count(r.norm) AS responses
FROM models m LEFT JOIN responses r ON r.stage_at = m.stage
WHERE m.model = $model
GROUP BY m.stage, m.stage_index
ORDER BY m.stage_index
"""


def _responses(f: CustomerFilter) -> str:
    """RESPONSES_CTE for f: the snapshot's surveys with their class, unless f has a window."""
    if has_window(f):
        return RESPONSES_CTE.format(restrict=restrict(f, "s.customer_id")[0])
    return RESPONSES_CLASS_CTE.format(restrict=class_where(f, "s.k")[0])


def kpis(con: duckdb.DuckDBPyConnection, model: StageModel, f: CustomerFilter) -> dict[str, Any]:
    """GET /v1/kpis: the SPEC 6.2 KPI object (ratios null when their denominator is 0)."""
    prepared.ensure(con)
    if has_window(f):
        where, params = reach_where(f)
        lapsed = LAPSED_EXPR.format(
            watermark="wm.watermark", last_seen="c.last_seen", lapse_after_s="mi.lapse_after_s"
        )
        agg = AGG_CUSTOMERS.format(where=where, lapsed=lapsed)
    else:
        where, params = class_where(f, "c.k")
        agg = AGG_CLASSES.format(where=where)
    sql = KPI_SQL.format(agg=agg, responses=_responses(f))
    cur = con.execute(sql, {**params, "model": model.name, "conversion": model.conversion_stage})
    row = rows_as_dicts(cur)[0]

    def survey(name: str) -> dict[str, Any]:
        return {"score": row[name], "responses": int(row[f"{name}_responses"])}

    return {
        "model": model.name,
        "customers": int(row["customers"]),
        "events": int(row["events"]),
        "conversion_rate": row["conversion_rate"],
        "retention_rate": row["retention_rate"],
        "churn_rate": row["churn_rate"],
        "nps": survey("nps"),
        "csat": survey("csat"),
        "ces": survey("ces"),
        "watermark": iso(row["watermark"]),
    }


def emotion(
    con: duckdb.DuckDBPyConnection, model: StageModel, f: CustomerFilter
) -> list[dict[str, Any]]:
    """Emotion per stage: [{"stage", "emotion" (mean in [-1, 1] or null), "responses"}]."""
    prepared.ensure(con)
    params = (restrict(f, "s.customer_id") if has_window(f) else class_where(f, "s.k"))[1]
    sql = EMOTION_SQL.format(responses=_responses(f))
    out = rows_as_dicts(con.execute(sql, {**params, "model": model.name}))
    for r in out:
        r["responses"] = int(r["responses"])
    return out

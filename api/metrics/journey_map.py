"""SPEC 6.2 journey map: the six parts of a journey map computed from data, per stage of a model,
for one segment (persona). Timeline, conversion and KPIs reuse the funnel and KPI SQL."""

from __future__ import annotations

from typing import Any

import duckdb

from api.metrics import prepared
from api.metrics.filters import (
    CustomerFilter,
    StageModel,
    class_where,
    has_window,
    reach_where,
    restrict,
    rows_as_dicts,
)
from api.metrics.funnel import funnel
from api.metrics.kpis import LAPSED_EXPR, emotion, kpis

TOP_TOUCHPOINTS = 5

# Touchpoints and channels are attributed to the stage at the event (SPEC 4.2) and ranked by
# events. No distinct-customer count: over event_stages it costs ~10x the whole scan. Without a
# first_seen window the counts come from the snapshot's per-class pre-aggregate (`n` events).
TOUCH_SQL = """
WITH counted AS (
    SELECT es.stage_at AS stage, es.{column} AS name, {count} AS events
    FROM {source} es
    WHERE es.model = $model AND {restrict}
    GROUP BY es.stage_at, es.{column}
)
SELECT stage, name, events FROM (
    SELECT *, row_number() OVER (PARTITION BY stage ORDER BY events DESC, name) AS rank
    FROM counted
) WHERE rank <= $top
ORDER BY stage, rank
"""

# Customers whose current stage (highest reached) is this one, and how many of them lapsed.
CURRENT_SQL = f"""
SELECT c.cur_stage AS stage, count(*) AS current_customers,
    count(*) FILTER (WHERE {LAPSED_EXPR.format(
        watermark="(SELECT max(watermark) FROM meta)", last_seen="c.last_seen",
        lapse_after_s="(SELECT max(lapse_after_s) FROM models WHERE model = $model)")})
        AS lapsed_customers
FROM __j_reach c
WHERE c.model = $model AND c.cur_stage IS NOT NULL AND {{where}}
GROUP BY c.cur_stage
"""

# The same from the snapshot's counts per (class, current stage, lapsed).
CURRENT_CLASS_SQL = """
SELECT c.cur_stage AS stage, sum(c.customers) AS current_customers,
    coalesce(sum(c.customers) FILTER (WHERE c.lapsed), 0) AS lapsed_customers
FROM __j_kpi c
WHERE c.model = $model AND c.cur_stage IS NOT NULL AND {where}
GROUP BY c.cur_stage
"""


def _touches(
    con: duckdb.DuckDBPyConnection, model: StageModel, f: CustomerFilter, column: str, top: int
) -> dict[str, list[dict[str, Any]]]:
    if has_window(f):
        where, params = restrict(f, "es.customer_id")
        sql = TOUCH_SQL.format(restrict=where, column=column, count="count(*)",
                               source="event_stages")
    else:
        where, params = class_where(f, "es.k")
        sql = TOUCH_SQL.format(restrict=where, column=column, count="sum(es.n)", source="__j_touch")
    out: dict[str, list[dict[str, Any]]] = {}
    key = "event" if column == "event" else "channel"
    for stage, name, events in con.execute(sql, {**params, "model": model.name, "top": top})\
            .fetchall():
        out.setdefault(stage, []).append({key: name, "events": int(events)})
    return out


def journey_map(
    con: duckdb.DuckDBPyConnection, model: StageModel, f: CustomerFilter
) -> dict[str, Any]:
    """GET /v1/journey-map: {"model", "segment", "kpis", "stages": [...]} in stage order."""
    prepared.ensure(con)
    timeline = funnel(con, model, f)["stages"]
    moods = {e["stage"]: e for e in emotion(con, model, f)}
    touchpoints = _touches(con, model, f, "event", TOP_TOUCHPOINTS)
    channels = _touches(con, model, f, "channel", 1_000)
    if has_window(f):
        where, params = reach_where(f)
        sql = CURRENT_SQL.format(where=where)
    else:
        where, params = class_where(f, "c.k")
        sql = CURRENT_CLASS_SQL.format(where=where)
    rows = rows_as_dicts(con.execute(sql, {**params, "model": model.name}))
    current = {r["stage"]: r for r in rows}
    stages = []
    for step in timeline:
        name = step["stage"]
        now = current.get(name, {})
        stages.append({
            "stage": name,
            "customers": step["customers"],
            "conversion_from_previous": step["conversion_from_previous"],
            "conversion_from_first": step["conversion_from_first"],
            "median_time_to_stage_s": step["median_time_to_stage_s"],
            "touchpoints": touchpoints.get(name, []),
            "channels": channels.get(name, []),
            "kpis": {
                "current_customers": int(now.get("current_customers", 0)),
                "lapsed_customers": int(now.get("lapsed_customers", 0)),
            },
            "emotion": {"score": moods[name]["emotion"], "responses": moods[name]["responses"]},
            "conversion_stage": name == model.conversion_stage,
        })
    return {"model": model.name, "segment": f.segment, "kpis": kpis(con, model, f),
            "stages": stages}

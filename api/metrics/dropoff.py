"""SPEC 5.1 Drop-off: per stage, the filtered customers reaching it, those that stopped there
(current stage k and lapsed), how long they stayed, and the last touchpoints they left from."""

from __future__ import annotations

from typing import Any

import duckdb

from api.metrics import prepared
from api.metrics.filters import CustomerFilter, StageModel, reach_where
from api.metrics.funnel import funnel

TOP_TOUCHPOINTS = 5

# __j_stop (api.metrics.prepared) holds only the lapsed customers, with their current stage's
# position `pos`; the filter's columns (first_seen, first_channel, class k) are the funnel's.
STOPPED_SQL = """
SELECT pos, count(*) AS stopped, median(days) AS median_days
FROM __j_stop WHERE model = $model AND {where} GROUP BY pos
"""
TOUCH_SQL = """
SELECT pos, event, channel, count(*) AS customers
FROM __j_stop WHERE model = $model AND {where} AND event IS NOT NULL
GROUP BY pos, event, channel
QUALIFY row_number() OVER (PARTITION BY pos ORDER BY count(*) DESC, event, channel) <= $top
ORDER BY pos, customers DESC, event, channel
"""


# Unfiltered, both come from the snapshot's small aggregates of __j_stop.
STOPPED_ALL_SQL = "SELECT pos, stopped, median_days FROM __j_stopall WHERE model = $model"
TOUCH_ALL_SQL = """
SELECT pos, event, channel, customers FROM __j_stoptouch WHERE model = $model
QUALIFY row_number() OVER (PARTITION BY pos ORDER BY customers DESC, event, channel) <= $top
ORDER BY pos, customers DESC, event, channel
"""


def dropoff(con: duckdb.DuckDBPyConnection, model: StageModel, f: CustomerFilter) -> dict[str, Any]:
    """GET /v1/dropoff: {"model", "stages": [...]} in stage order."""
    prepared.ensure(con)
    reached = [s["customers"] for s in funnel(con, model, f)["stages"]]
    if f == CustomerFilter():
        stopped_sql, touch_sql, params = STOPPED_ALL_SQL, TOUCH_ALL_SQL, {"model": model.name}
    else:
        where, params = reach_where(f)
        params["model"] = model.name
        stopped_sql, touch_sql = STOPPED_SQL.format(where=where), TOUCH_SQL.format(where=where)
    stopped = {pos: (int(n), median) for pos, n, median in
               con.execute(stopped_sql, params).fetchall()}
    touches: dict[int, list[dict[str, Any]]] = {}
    for pos, event, channel, n in con.execute(touch_sql,
                                              {**params, "top": TOP_TOUCHPOINTS}).fetchall():
        touches.setdefault(pos, []).append({"event": event, "channel": channel,
                                            "customers": int(n)})
    stages: list[dict[str, Any]] = []
    for pos, (name, n) in enumerate(zip(model.stages, reached, strict=True), start=1):
        count, median = stopped.get(pos, (0, None))
        stages.append({
            "stage": name,
            "reached": n,
            "stopped": count,
            "stop_rate": None if n == 0 else count / n,
            "median_days_to_stop": median,
            "last_touchpoints": touches.get(pos, []),
        })
    return {"model": model.name, "stages": stages}

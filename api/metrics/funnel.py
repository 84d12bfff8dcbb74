"""SPEC 5 Funnel: per stage, the filtered customers reaching it, conversion ratios and the median
time from first_seen to entering the stage."""

from __future__ import annotations

from typing import Any

import duckdb

from api.metrics import prepared
from api.metrics.filters import CustomerFilter, StageModel, reach_where

# One scan of the per-customer table of the snapshot (api.metrics.prepared): d<i> is the seconds
# from first_seen to entering stage i, NULL when the customer never reached it.
FUNNEL_SQL = "SELECT {columns} FROM __j_reach WHERE model = $model AND {where}"


def funnel(con: duckdb.DuckDBPyConnection, model: StageModel, f: CustomerFilter) -> dict[str, Any]:
    """GET /v1/funnel: {"model", "stages": [...]} in stage order."""
    prepared.ensure(con)
    where, params = reach_where(f)
    columns = ", ".join(f"count(d{i}), median(d{i})" for i in range(1, len(model.stages) + 1))
    row = con.execute(FUNNEL_SQL.format(columns=columns, where=where),
                      {**params, "model": model.name}).fetchone()
    values: list[Any] = list(row) if row else [0, None] * len(model.stages)
    stages: list[dict[str, Any]] = []
    first = int(values[0]) if values else 0
    previous = first
    for i, name in enumerate(model.stages):
        customers, median = int(values[2 * i]), values[2 * i + 1]
        # Ratios are null when their denominator is 0; stage 1 is compared with itself.
        stages.append({
            "stage": name,
            "customers": customers,
            "conversion_from_previous": None if previous == 0 else customers / previous,
            "conversion_from_first": None if first == 0 else customers / first,
            "median_time_to_stage_s": median,
        })
        previous = customers
    return {"model": model.name, "stages": stages}

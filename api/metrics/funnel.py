"""SPEC 5 Funnel: per stage, the filtered customers reaching it, conversion ratios and the median
time from first_seen to entering the stage."""

from __future__ import annotations

from typing import Any

import duckdb

from api.metrics import prepared
from api.metrics.filters import CustomerFilter, StageModel, class_where, has_window, reach_where

# With a first_seen window: one scan of the per-customer table of the snapshot
# (api.metrics.prepared), d<i> = seconds from first_seen to entering stage i, NULL if never.
FUNNEL_SQL = "SELECT {columns} FROM __j_reach WHERE model = $model AND {where}"

# Otherwise: customers per stage add up over classes, and the median is the middle row (or two)
# of the stage's times in __j_dsorted, sorted here: a delta (api/advance.py) inserts the changed
# customers' rows at the end, so the table's own order is not kept.
COUNT_SQL = """
SELECT pos, CAST(sum(customers) AS BIGINT) FROM __j_dcount
WHERE model = $model AND {restrict} GROUP BY pos
"""
MIDDLE_SQL = """
SELECT d FROM __j_dsorted WHERE model = $model AND pos = $pos AND {restrict}
ORDER BY d LIMIT $n OFFSET $skip
"""
# Unfiltered, the whole answer is one of the snapshot's pre-aggregates.
WHOLE_SQL = "SELECT pos, customers, median FROM __j_funnel WHERE model = $model"


def _by_class(con: duckdb.DuckDBPyConnection, model: StageModel,
              f: CustomerFilter) -> list[tuple[int, float | None]]:
    """(customers, median time to stage) per stage, from the class-level tables."""
    if f == CustomerFilter():
        whole = {p: (int(n), m) for p, n, m in
                 con.execute(WHOLE_SQL, {"model": model.name}).fetchall()}
        return [whole.get(pos, (0, None)) for pos in range(1, len(model.stages) + 1)]
    restrict, params = class_where(f)
    params["model"] = model.name
    counts = dict(con.execute(COUNT_SQL.format(restrict=restrict), params).fetchall())
    out: list[tuple[int, float | None]] = []
    for pos in range(1, len(model.stages) + 1):
        n = int(counts.get(pos, 0))
        median: float | None = None
        if n:
            rows = con.execute(MIDDLE_SQL.format(restrict=restrict), {
                **params, "pos": pos, "n": 2 - n % 2, "skip": (n - 1) // 2}).fetchall()
            low, high = float(rows[0][0]), float(rows[-1][0])
            # DuckDB's interpolated median: lo + 0.5 * (hi - lo)
            median = low if n % 2 else low + 0.5 * (high - low)
        out.append((n, median))
    return out


def _by_customer(con: duckdb.DuckDBPyConnection, model: StageModel,
                 f: CustomerFilter) -> list[tuple[int, float | None]]:
    """(customers, median time to stage) per stage, from the per-customer table."""
    where, params = reach_where(f)
    columns = ", ".join(f"count(d{i}), median(d{i})" for i in range(1, len(model.stages) + 1))
    row = con.execute(FUNNEL_SQL.format(columns=columns, where=where),
                      {**params, "model": model.name}).fetchone()
    values: list[Any] = list(row) if row else [0, None] * len(model.stages)
    return [(int(values[2 * i]), values[2 * i + 1]) for i in range(len(model.stages))]


def funnel(con: duckdb.DuckDBPyConnection, model: StageModel, f: CustomerFilter) -> dict[str, Any]:
    """GET /v1/funnel: {"model", "stages": [...]} in stage order."""
    prepared.ensure(con)
    reached = _by_customer(con, model, f) if has_window(f) else _by_class(con, model, f)
    return {"model": model.name, "stages": stage_rows(model, reached)}


def stage_rows(model: StageModel,
               reached: list[tuple[int, float | None]]) -> list[dict[str, Any]]:
    """The funnel's stage rows from (count, median time to stage) per stage, in stage order."""
    first = reached[0][0] if reached else 0
    previous = first
    stages: list[dict[str, Any]] = []
    for name, (customers, median) in zip(model.stages, reached, strict=True):
        # Ratios are null when their denominator is 0; stage 1 is compared with itself.
        stages.append({
            "stage": name,
            "customers": customers,
            "conversion_from_previous": None if previous == 0 else customers / previous,
            "conversion_from_first": None if first == 0 else customers / first,
            "median_time_to_stage_s": median,
        })
        previous = customers
    return stages

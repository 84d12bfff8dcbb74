"""SPEC 4.2 stage transitions (the non-linear view): every from -> to change of own stages."""

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
    rows_as_dicts,
)

# Sorted by transitions descending, then by the stage order of from and to.
TRANSITIONS_SQL = """
WITH fc AS ({customers})
SELECT t.from_stage AS "from", t.to_stage AS "to", sum(t.transitions) AS transitions,
       count(DISTINCT t.customer_id) AS customers
FROM transitions t JOIN fc USING (customer_id)
LEFT JOIN models mf ON mf.model = t.model AND mf.stage = t.from_stage
LEFT JOIN models mt ON mt.model = t.model AND mt.stage = t.to_stage
WHERE t.model = $model AND t.transitions > 0
GROUP BY t.from_stage, t.to_stage, mf.stage_index, mt.stage_index
ORDER BY transitions DESC, mf.stage_index, mt.stage_index
"""

# The same from the snapshot's per-class pre-aggregate (distinct customers add up over classes).
CLASS_SQL = """
SELECT t.from_stage AS "from", t.to_stage AS "to",
       CAST(sum(t.transitions) AS BIGINT) AS transitions,
       CAST(sum(t.customers) AS BIGINT) AS customers
FROM __j_trans t
LEFT JOIN models mf ON mf.model = t.model AND mf.stage = t.from_stage
LEFT JOIN models mt ON mt.model = t.model AND mt.stage = t.to_stage
WHERE t.model = $model AND {restrict}
GROUP BY t.from_stage, t.to_stage, mf.stage_index, mt.stage_index
ORDER BY transitions DESC, mf.stage_index, mt.stage_index
"""


def transitions(
    con: duckdb.DuckDBPyConnection, model: StageModel, f: CustomerFilter
) -> list[dict[str, Any]]:
    """GET /v1/transitions: [{"from", "to", "transitions", "customers"}]."""
    prepared.ensure(con)
    if has_window(f):
        customers, params = customer_sql(f)
        sql = TRANSITIONS_SQL.format(customers=customers)
    else:
        where, params = class_where(f, "t.k")
        sql = CLASS_SQL.format(restrict=where)
    cur = con.execute(sql, {**params, "model": model.name})
    out = rows_as_dicts(cur)
    for r in out:
        r["transitions"], r["customers"] = int(r["transitions"]), int(r["customers"])
    return out

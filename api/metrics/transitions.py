"""SPEC 4.2 stage transitions (the non-linear view): every from -> to change of own stages."""

from __future__ import annotations

from typing import Any

import duckdb

from api.metrics.filters import CustomerFilter, StageModel, customer_sql, rows_as_dicts

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


def transitions(
    con: duckdb.DuckDBPyConnection, model: StageModel, f: CustomerFilter
) -> list[dict[str, Any]]:
    """GET /v1/transitions: [{"from", "to", "transitions", "customers"}]."""
    customers, params = customer_sql(f)
    cur = con.execute(TRANSITIONS_SQL.format(customers=customers), {**params, "model": model.name})
    out = rows_as_dicts(cur)
    for r in out:
        r["transitions"], r["customers"] = int(r["transitions"]), int(r["customers"])
    return out

"""SPEC 5 Attribution: credit for each conversion of a model, spread over the customer's sessions
that start at or before its conversion (the converting session is always the last touch)."""

from __future__ import annotations

from typing import Any, Literal

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

Method = Literal["first_touch", "last_touch", "linear", "position_based"]
By = Literal["channel", "source", "source_medium"]
METHODS: tuple[str, ...] = ("first_touch", "last_touch", "linear", "position_based")
BYS: tuple[str, ...] = ("channel", "source", "source_medium")
# `source_medium` keys "source / medium" (GA4's wording), so that a reader can group sources
# into channel groups, which need the medium (google / cpc is paid search, google / organic not).
KEYS: dict[str, str] = {
    "channel": "s.channel",
    "source": "s.source",
    "source_medium": "s.source || ' / ' || coalesce(s.medium, '(none)')",
}

# SPEC 5: the first touch is the earliest-starting session (pf = 1); the last touch is the
# converting session, so touches are ranked a second way (pl) with it last: a single-touch session
# (an email, a call) starting inside a long web session that then converts must take neither.
# position_based: 40/20/40 over first, middle and last; when the earliest session is also the
# converting one it takes both 40s; one touch 100, two touches 50/50.
ATTRIBUTION_SQL = """
WITH fc AS ({customers}),
conv AS (
    SELECT se.customer_id, min(se.entered_at) AS entered_at
    FROM stage_entries se JOIN fc USING (customer_id)
    WHERE se.model = $model AND se.stage = $conversion
    GROUP BY se.customer_id
),
touches AS (
    SELECT s.customer_id, {key} AS key,
        row_number() OVER (PARTITION BY s.customer_id ORDER BY s.start, s.session_id) AS pf,
        row_number() OVER (PARTITION BY s.customer_id ORDER BY
            coalesce(list_contains(s.converted_models, $model), FALSE), s.start, s.session_id
        ) AS pl,
        count(*) OVER (PARTITION BY s.customer_id) AS n
    FROM sessions s JOIN conv USING (customer_id)
    WHERE s.start <= conv.entered_at
),
credited AS (
    SELECT customer_id, key,
        CASE $method
            WHEN 'first_touch' THEN CASE WHEN pf = 1 THEN 1.0 ELSE 0.0 END
            WHEN 'last_touch' THEN CASE WHEN pl = n THEN 1.0 ELSE 0.0 END
            WHEN 'linear' THEN 1.0 / n
            ELSE {position_based}
        END AS credit
    FROM (SELECT *, {ends} FROM touches)
)
SELECT key, round(sum(credit), 9) AS credit,
       count(DISTINCT customer_id) FILTER (WHERE credit > 0) AS conversions
FROM credited
GROUP BY key
HAVING sum(credit) > 0
ORDER BY credit DESC, key
""".replace("{position_based}", prepared.POSITION_BASED).replace(
    "{ends}", prepared.ends("customer_id"))

# The same from the snapshot's per-class pre-aggregate of every method's credit (cr_<method>)
# and converting customers with credit (cv_<method>; customers add up over classes).
CLASS_SQL = """
SELECT key, round(sum(cr_{method}), 9) AS credit, sum(cv_{method}) AS conversions
FROM __j_attr
WHERE model = $model AND kind = $by AND {restrict}
GROUP BY key
HAVING sum(cr_{method}) > 0
ORDER BY credit DESC, key
"""


def attribution(
    con: duckdb.DuckDBPyConnection, model: StageModel, f: CustomerFilter, method: Method, by: By
) -> list[dict[str, Any]]:
    """GET /v1/attribution: [{"key", "credit", "conversions"}], credit descending then key.

    `conversions` counts the converting customers that gave the key some credit."""
    if method not in METHODS or by not in BYS:
        raise ValueError(f"method {method!r} / by {by!r}")  # routes validate; this guards SQL
    prepared.ensure(con)
    if has_window(f):
        customers, params = customer_sql(f)
        sql = ATTRIBUTION_SQL.format(customers=customers, key=KEYS[by])
        params |= {"conversion": model.conversion_stage, "method": method}
    else:
        where, params = class_where(f)
        sql = CLASS_SQL.format(method=method, restrict=where)
        params |= {"by": by}
    params |= {"model": model.name}
    out = rows_as_dicts(con.execute(sql, params))
    for r in out:
        r["conversions"] = int(r["conversions"])
    return out

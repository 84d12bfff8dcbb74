"""Retention cohorts: weekly cohorts of first_seen, share active in each following week."""

from __future__ import annotations

import duckdb

from api.metrics.cohorts import cohorts
from api.metrics.filters import CustomerFilter, load_model
from tests.api.conftest import Dataset, at


def test_5_weekly_cohorts(con: duckdb.DuckDBPyConnection, data: Dataset) -> None:
    data.watermark = at(15)  # 2024-01-16: weeks starting later are null
    data.customer("a", at(0))  # Monday 2024-01-01
    data.customer("b", at(2, 3600))  # Wednesday, same week
    data.customer("c", at(7))  # Monday 2024-01-08
    for eid, cid, day in [("a1", "a", 0), ("a2", "a", 8), ("a3", "a", 9),
                          ("b1", "b", 2), ("b2", "b", 16), ("c1", "c", 7), ("c2", "c", 8)]:
        data.event(eid, cid, at(day, 3600), "Page Viewed", "awareness")
    data.load(con)
    assert cohorts(con, load_model(con, "default"), CustomerFilter(), weeks=4) == [
        {"cohort": "2024-01-01T00:00:00Z", "customers": 2, "retention": [1.0, 0.5, 0.5, None]},
        {"cohort": "2024-01-08T00:00:00Z", "customers": 1, "retention": [1.0, 0.0, None, None]},
    ]

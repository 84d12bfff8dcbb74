"""Time series per channel: events and distinct customers per UTC day."""

from __future__ import annotations

import duckdb

from api.metrics.filters import CustomerFilter, load_model, parse_filter
from api.metrics.timeseries import timeseries
from tests.api.conftest import Dataset, at


def test_5_events_and_customers_per_day_and_channel(con: duckdb.DuckDBPyConnection,
                                                    data: Dataset) -> None:
    data.customer("a", at(0), traits={"plan": "pro"})
    data.customer("b", at(0))
    for eid, cid, day, sec, channel in [
        ("1", "a", 0, 10, "web"), ("2", "a", 0, 20, "web"), ("3", "b", 0, 86399, "web"),
        ("4", "b", 0, 30, "email"), ("5", "a", 1, 0, "web"), ("6", "b", 2, 0, "app"),
    ]:
        data.event(eid, cid, at(day, sec), "Page Viewed", "awareness", channel=channel)
    data.load(con)
    model = load_model(con, "default")
    assert timeseries(con, model, CustomerFilter(), None, None, None) == [
        {"date": "2024-01-01", "channel": "email", "events": 1, "customers": 1},
        {"date": "2024-01-01", "channel": "web", "events": 3, "customers": 2},
        {"date": "2024-01-02", "channel": "web", "events": 1, "customers": 1},
        {"date": "2024-01-03", "channel": "app", "events": 1, "customers": 1},
    ]
    assert timeseries(con, model, CustomerFilter(), at(1), at(2), None) == [
        {"date": "2024-01-02", "channel": "web", "events": 1, "customers": 1}]
    pro_web = timeseries(con, model, parse_filter({"trait.plan": "pro"}), None, None, "web")
    assert [(r["date"], r["events"]) for r in pro_web] == [("2024-01-01", 2), ("2024-01-02", 1)]

"""SPEC 6.2 journey map: timeline, touchpoints, channels, KPIs and emotion per stage."""

from __future__ import annotations

import duckdb

from api.metrics.filters import load_model, parse_filter
from api.metrics.journey_map import journey_map
from tests.api.conftest import Dataset, at


def test_6_2_journey_map_per_stage(con: duckdb.DuckDBPyConnection, data: Dataset) -> None:
    data.watermark = at(100)
    data.customer("a", at(0), at(20), traits={"persona": "hunter"})
    data.stages("a", [at(0), at(0, 10), at(1)])
    data.customer("b", at(0), at(2), traits={"persona": "browser"})
    data.stages("b", [at(0), at(0, 30)])
    data.customer("c", at(0), at(0), traits={"persona": "hunter"})
    data.stages("c", [at(0)])
    for i, (cid, sec, event, stage, channel) in enumerate([
        ("a", 0, "Page Viewed", "awareness", "web"),
        ("a", 10, "Product Viewed", "consideration", "web"),
        ("a", 20, "Product Viewed", "consideration", "web"),
        ("a", 86400, "Order Completed", "decision", "app"),
        ("b", 0, "Email Opened", "awareness", "email"),
        ("b", 30, "Email Clicked", "consideration", "email"),
        ("b", 40, "Page Viewed", "consideration", "web"),
        ("c", 0, "Page Viewed", "awareness", "web"),
    ]):
        data.event(f"e{i}", cid, at(0, sec), event, stage, channel=channel)
    data.survey("s1", "a", "csat", 5, "decision")
    data.load(con)
    out = journey_map(con, load_model(con, "default"), parse_filter({}))
    assert out["segment"] == {} and out["model"] == "default"
    assert out["kpis"]["customers"] == 3 and out["kpis"]["conversion_rate"] == 1 / 3
    by = {s["stage"]: s for s in out["stages"]}
    assert list(by) == ["awareness", "consideration", "decision", "retention", "advocacy"]
    assert by["consideration"]["customers"] == 2
    assert by["consideration"]["median_time_to_stage_s"] == 20.0
    assert by["consideration"]["touchpoints"] == [
        {"event": "Product Viewed", "events": 2},
        {"event": "Email Clicked", "events": 1},  # ties by name
        {"event": "Page Viewed", "events": 1},
    ]
    assert by["awareness"]["channels"] == [
        {"channel": "web", "events": 2},
        {"channel": "email", "events": 1},
    ]
    assert by["awareness"]["kpis"] == {"current_customers": 1, "lapsed_customers": 1}
    assert by["decision"]["kpis"] == {"current_customers": 1, "lapsed_customers": 0}
    assert by["decision"]["emotion"] == {"score": 1.0, "responses": 1}
    assert by["decision"]["conversion_stage"] is True
    assert by["retention"]["touchpoints"] == [] and by["retention"]["emotion"]["score"] is None

    hunter = parse_filter({"trait.persona": "hunter"})
    hunters = journey_map(con, load_model(con, "default"), hunter)
    assert hunters["segment"] == {"persona": "hunter"}
    assert [s["customers"] for s in hunters["stages"]] == [2, 1, 1, 0, 0]
    assert hunters["stages"][0]["channels"] == [{"channel": "web", "events": 2}]

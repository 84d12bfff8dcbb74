"""SPEC 5 KPIs and emotion per stage, with hand-computed expectations."""

from __future__ import annotations

import duckdb
import pytest

from api.metrics.filters import CustomerFilter, load_model, parse_filter
from api.metrics.kpis import emotion, kpis
from tests.api.conftest import Dataset, at


@pytest.fixture
def loaded(con: duckdb.DuckDBPyConnection, data: Dataset) -> duckdb.DuckDBPyConnection:
    data.watermark = at(200)  # lapse_after 90 days: lapsed when last_seen is before day 110
    data.model("short", ("first", "last"), conversion="last")
    data.customer("a", at(0), at(150), events=5, traits={"plan": "pro"})
    data.stages("a", [at(0), at(1), at(2)])  # converted, active
    data.customer("b", at(0), at(100), events=3)
    data.stages("b", [at(0), at(1), at(2), at(3)])  # retained, lapsed -> churned
    data.customer("c", at(0), at(50), events=2)
    data.stages("c", [at(0), at(1)])  # lapsed, never converted
    data.customer("d", at(0), at(110), events=1)
    data.stages("d", [at(0)])  # exactly 90 days before the watermark: not lapsed
    data.stages("a", [at(0), at(3)], model="short", names=("first", "last"))
    for eid, survey, score, stage in [
        ("n1", "nps", 10, "decision"), ("n2", "nps", 9, "decision"),
        ("n3", "nps", 8, "consideration"), ("n4", "nps", 6, "awareness"),
        ("n5", "nps", 11, "awareness"),  # off the 0..10 scale: ignored
        ("c1", "csat", 5, "retention"), ("c2", "csat", 4, "retention"),
        ("c3", "csat", 2, "consideration"),
        ("e1", "ces", 2, "retention"), ("e2", "CES", 5, "advocacy"),
    ]:
        data.survey(eid, "a" if eid != "n4" else "c", survey, score, stage)
    data.survey("n1", "a", "nps", 10, "decision")  # the same event twice: counted once
    data.survey("n1", "a", "nps", 0, "first", model="short")  # another model's row
    data.load(con)
    return con


def test_5_kpis_by_hand(loaded: duckdb.DuckDBPyConnection) -> None:
    out = kpis(loaded, load_model(loaded, "default"), CustomerFilter())
    assert out == {
        "model": "default", "customers": 4, "events": 11,
        "conversion_rate": 0.5,  # a, b at or past decision
        "retention_rate": 0.5,  # b at retention
        "churn_rate": 0.5,  # b lapsed and converted
        "nps": {"score": 25.0, "responses": 4},  # (2 promoters - 1 detractor) / 4
        "csat": {"score": pytest.approx(200 / 3), "responses": 3},
        "ces": {"score": 3.5, "responses": 2},
        "watermark": "2024-07-19T00:00:00Z",
    }


def test_4_2_retention_is_null_without_a_stage_after_conversion(
    loaded: duckdb.DuckDBPyConnection,
) -> None:
    out = kpis(loaded, load_model(loaded, "short"), CustomerFilter())
    assert (out["conversion_rate"], out["retention_rate"], out["churn_rate"]) == (0.25, None, 0.0)
    assert out["nps"] == {"score": -100.0, "responses": 1}


def test_5_kpis_of_an_empty_segment_are_null(loaded: duckdb.DuckDBPyConnection) -> None:
    out = kpis(loaded, load_model(loaded, "default"), parse_filter({"trait.plan": "none"}))
    assert out["customers"] == 0 and out["events"] == 0
    assert out["conversion_rate"] is None and out["churn_rate"] is None
    assert out["nps"] == {"score": None, "responses": 0}


def test_5_emotion_per_stage_is_the_mean_normalised_score(
    loaded: duckdb.DuckDBPyConnection,
) -> None:
    got = {e["stage"]: (e["emotion"], e["responses"])
           for e in emotion(loaded, load_model(loaded, "default"), CustomerFilter())}
    assert got["awareness"] == (pytest.approx(0.2), 1)  # nps 6 -> (6-5)/5
    assert got["consideration"] == (pytest.approx((0.6 - 0.5) / 2), 2)  # nps 8, csat 2
    assert got["decision"] == (pytest.approx(0.9), 2)  # nps 10 and 9
    assert got["retention"] == (pytest.approx((1.0 + 0.5 - 2 / 3) / 3), 3)
    assert got["advocacy"] == (pytest.approx(1 / 3), 1)  # ces 5 -> (5-4)/3


def test_5_emotion_of_a_stage_without_responses_is_null(
    loaded: duckdb.DuckDBPyConnection,
) -> None:
    got = emotion(loaded, load_model(loaded, "default"), parse_filter({"trait.plan": "pro"}))
    assert got[0] == {"stage": "awareness", "emotion": None, "responses": 0}  # n4 is c's

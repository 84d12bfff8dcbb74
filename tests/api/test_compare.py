"""SPEC 5.1 Comparison over HTTP, on the hand-made warehouse of tests/api/test_funnel.py (whose
funnel numbers are worked out there): both funnels as /v1/funnel answers them, deltas b − a."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from tests.api.conftest import DAY, TOKEN, Dataset, MemoryWarehouse, at, make_store

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client(settings: ApiSettings, data: Dataset) -> TestClient:
    data.watermark = at(30)
    data.customer("a", at(0), channel="web", traits={"plan": "pro"})
    data.stages("a", [at(0), at(0, 60), at(1)])
    data.customer("b", at(2), channel="email", traits={"plan": "free"})
    data.stages("b", [at(2), at(2, 120)])
    data.customer("c", at(5), channel="web", traits={"plan": "pro", "vip": True})
    data.stages("c", [at(5), at(5, 300), at(5, 300), at(7)], inferred=(2,))
    data.customer("d", at(10), channel="web")
    data.stages("d", [at(10)])
    return TestClient(create_app(settings, make_store(MemoryWarehouse(data))))


def get(client: TestClient, path: str, **params: str) -> Any:
    r = client.get(path, params=params, headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()


def test_5_1_both_sides_are_the_funnels_of_their_selection(client: TestClient) -> None:
    body = get(client, "/v1/compare", **{"a.channel": "web", "b.trait.plan": "pro",
                                         "b.from": "2024-01-03"})
    assert body["model"] == "default"
    assert body["a"]["stages"] == get(client, "/v1/funnel", channel="web")["stages"]
    assert body["b"]["stages"] == get(client, "/v1/funnel", **{
        "trait.plan": "pro", "from": "2024-01-03"})["stages"]
    assert body["a"]["filter"] == {"from": None, "to": None, "channel": "web", "traits": {}}
    assert body["b"]["filter"] == {"from": "2024-01-03T00:00:00Z", "to": None, "channel": None,
                                   "traits": {"plan": "pro"}}


def test_5_1_deltas_are_b_minus_a_per_stage(client: TestClient) -> None:
    # a: web (a, c, d): customers 3, 2, 2, 1, 0; b: email (b): 1, 1, 0, 0, 0
    body = get(client, "/v1/compare", **{"a.channel": "web", "b.channel": "email"})
    assert [d["stage"] for d in body["delta"]] == [
        "awareness", "consideration", "decision", "retention", "advocacy"]
    assert [d["delta_conversion_from_first"] for d in body["delta"]] == pytest.approx(
        [0.0, 1 - 2 / 3, 0 - 2 / 3, 0 - 1 / 3, 0.0])
    # medians: a 0, 180 s, (DAY + 300) / 2, 2 days, none; b 0, 120 s, none...
    assert [d["delta_median_time_to_stage_s"] for d in body["delta"]] == [
        0.0, 120.0 - 180.0, None, None, None]


def test_5_1_deltas_are_null_when_either_side_is_null(client: TestClient) -> None:
    body = get(client, "/v1/compare", **{"b.trait.plan": "enterprise"})  # nobody
    assert [s["customers"] for s in body["b"]["stages"]] == [0] * 5
    assert all(d["delta_conversion_from_first"] is None and
               d["delta_median_time_to_stage_s"] is None for d in body["delta"])
    same = get(client, "/v1/compare")  # a = b = everyone: zero where defined
    assert [d["delta_conversion_from_first"] for d in same["delta"]] == [0.0] * 5
    assert [d["delta_median_time_to_stage_s"] for d in same["delta"]] == [0.0] * 4 + [None]


def test_5_1_two_periods(client: TestClient) -> None:
    body = get(client, "/v1/compare", **{"a.from": "2024-01-01", "a.to": "2024-01-05",
                                         "b.from": "2024-01-05", "b.to": "2024-01-12"})
    assert [s["customers"] for s in body["a"]["stages"]] == [2, 2, 1, 0, 0]  # a, b
    assert [s["customers"] for s in body["b"]["stages"]] == [2, 1, 1, 1, 0]  # c, d
    assert body["delta"][2]["delta_median_time_to_stage_s"] == 300.0 - DAY


@pytest.mark.parametrize(("params", "param"), [
    ({"a.from": "yesterday"}, "a.from"), ({"b.to": "2024-13-01"}, "b.to"),
    ({"b.channel": "fax"}, "b.channel"), ({"a.trait.nope": "x"}, None),
    ({"model": "nope"}, None), ({"b.trait.": "x"}, "b.trait."),
])
def test_5_1_bad_selections_are_400_naming_the_parameter(
    client: TestClient, params: dict[str, str], param: str | None
) -> None:
    r = client.get("/v1/compare", params=params, headers=AUTH)
    assert r.status_code == 400, r.text
    if param is not None:
        assert r.json()["param"] == param


def test_5_1_openapi_states_both_selections(client: TestClient) -> None:
    op = client.get("/openapi.json").json()["paths"]["/v1/compare"]["get"]
    names = {p["name"] for p in op["parameters"]}
    assert {"model", "a.from", "a.to", "a.channel", "a.trait", "b.from", "b.to", "b.channel",
            "b.trait"} <= names
    content = op["responses"]["200"]["content"]
    assert set(content["application/json"]["schema"]["properties"]) == {"model", "a", "b", "delta"}
    assert "text/csv" in content

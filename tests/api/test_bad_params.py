"""SPEC 6.5: parameters at the edge of their range are a 400 with JSON, never a 500."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.query import query_router
from api.routes import COMPUTES
from api.settings import ApiSettings
from tests.api.conftest import TOKEN, Dataset, MemoryWarehouse, at, make_store

AUTH = {"Authorization": f"Bearer {TOKEN}"}
EDGES = ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "9999-12-31",
         "0001-01-01", "10000-01-01"]


@pytest.fixture(scope="module")
def client() -> TestClient:
    d = Dataset(version=1, watermark=at(30))
    d.model()
    d.customer("c1", at(0), keys=(("user_id", "u1"),))
    d.stages("c1", [at(0)])
    settings = ApiSettings(api_tokens=[TOKEN])  # type: ignore[list-item]
    store = make_store(MemoryWarehouse(d))
    app = create_app(settings, store)
    app.include_router(query_router(settings, store))
    return TestClient(app)


@pytest.mark.parametrize("path", sorted(COMPUTES))
@pytest.mark.parametrize("param", ["from", "to"])
def test_6_5_dates_whose_offset_leaves_the_calendar_are_a_400(
    client: TestClient, path: str, param: str,
) -> None:
    if path == "/v1/compare":  # its selections' windows are a.from, b.to, ...
        param = "a." + param
    for value in EDGES:
        answer = client.get(path, params={param: value}, headers=AUTH)
        assert answer.status_code in (200, 400), (path, value, answer.text)
        assert answer.headers["content-type"].startswith("application/json")
    answer = client.get(path, params={param: EDGES[0]}, headers=AUTH)
    assert answer.status_code == 400 and answer.json()["param"] == param


@pytest.mark.parametrize("limit", [2**64, 2**70, -(2**70), 10**400, 0])
def test_6_5_a_query_limit_over_64_bits_is_a_400(client: TestClient, limit: int) -> None:
    body = '{"sql": "SELECT 1", "limit": ' + str(limit) + "}"
    answer = client.post("/v1/query", content=body, headers={**AUTH,
                                                              "content-type": "application/json"})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "bad_parameter"

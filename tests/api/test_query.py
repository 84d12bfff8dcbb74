"""POST /v1/query, GET /v1/models and GET /v1/traits/{name}/values over hand-made warehouses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.model_version import model_version
from api.ops import ops_router
from api.query import query_router
from api.settings import ApiSettings
from journey.server import create_api_app
from tests.api.conftest import TOKEN, Dataset, MemoryWarehouse, at, make_store

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def dataset(version: int = 1, customers: int = 3) -> Dataset:
    d = Dataset(version=version, watermark=at(30))
    d.model()
    d.model("aida", ("awareness", "interest", "desire", "action"), conversion="action")
    plans = ["pro", "free", "pro", "team", "pro", "free"]
    for i in range(customers):
        d.customer(f"c{i}", at(i), traits={"plan": plans[i % len(plans)], "age": 30 + i})
    return d


def app_for(wh: MemoryWarehouse, **settings: object) -> TestClient:
    s = ApiSettings(api_tokens=[SecretStr(TOKEN)], **settings)  # type: ignore[arg-type]
    app = FastAPI()
    store = make_store(wh)
    app.include_router(query_router(s, store))
    app.include_router(ops_router(store))
    return TestClient(app)


@pytest.fixture
def wh() -> MemoryWarehouse:
    return MemoryWarehouse(dataset())


@pytest.fixture
def client(wh: MemoryWarehouse) -> TestClient:
    return app_for(wh, query_max_rows=5)


def query(client: TestClient, sql: str, **extra: object) -> dict[str, object]:
    r = client.post("/v1/query", json={"sql": sql, **extra}, headers=AUTH)
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


def test_6_2_query_answers_columns_rows_and_count(client: TestClient) -> None:
    body = query(client, "SELECT customer_id, first_seen, json_extract_string(traits, '$.plan') "
                         "AS plan FROM customers ORDER BY customer_id")
    assert body["columns"] == [{"name": "customer_id", "type": "VARCHAR"},
                               {"name": "first_seen", "type": "TIMESTAMP WITH TIME ZONE"},
                               {"name": "plan", "type": "VARCHAR"}]
    assert body["rows"] == [["c0", "2024-01-01T00:00:00Z", "pro"],
                            ["c1", "2024-01-02T00:00:00Z", "free"],
                            ["c2", "2024-01-03T00:00:00Z", "pro"]]
    assert body["row_count"] == 3 and body["truncated"] is False and body["version"] == 1


def test_6_2_decimals_and_intervals_are_json_numbers(client: TestClient) -> None:
    body = query(client, "SELECT 1.25 AS d, INTERVAL 90 SECOND AS i, "
                         "max(last_seen) - min(first_seen) AS span FROM customers")
    assert body["rows"] == [[1.25, 90.0, 2 * 86_400.0]]


def test_6_2_rows_beyond_the_limit_are_cut_and_flagged(client: TestClient) -> None:
    body = query(client, "SELECT * FROM range(7)")
    assert body["row_count"] == 5 and body["truncated"] is True
    assert body["rows"] == [[0], [1], [2], [3], [4]]
    body = query(client, "SELECT * FROM range(7)", limit=2)
    assert body["rows"] == [[0], [1]] and body["truncated"] is True
    assert query(client, "SELECT * FROM range(2)", limit=2)["truncated"] is False


@pytest.mark.parametrize("body", [
    {"sql": "SELECT 1", "limit": 6}, {"sql": "SELECT 1", "limit": 0}, {"query": "SELECT 1"},
    {"sql": 42}, {"sql": "SELECT 1", "extra": True},
])
def test_6_2_a_malformed_body_is_a_400_naming_the_problem(client: TestClient,
                                                          body: dict[str, object]) -> None:
    r = client.post("/v1/query", json=body, headers=AUTH)
    assert r.status_code == 400 and r.json()["error"] == "bad_parameter"


def test_6_2_body_that_is_not_json_is_a_400(client: TestClient) -> None:
    r = client.post("/v1/query", content=b"SELECT 1", headers=AUTH)
    assert r.status_code == 400 and r.json()["error"] == "bad_parameter"


def test_6_2_an_admitted_query_duckdb_rejects_is_a_400_with_its_message(
    client: TestClient,
) -> None:
    r = client.post("/v1/query", json={"sql": "SELECT no_such_column FROM customers"},
                    headers=AUTH)
    assert r.status_code == 400 and r.json()["error"] == "query_error"
    assert "no_such_column" in r.json()["message"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}])
def test_6_1_query_models_and_traits_need_a_token(client: TestClient,
                                                  headers: dict[str, str]) -> None:
    assert client.post("/v1/query", json={"sql": "SELECT 1"}, headers=headers).status_code == 401
    assert client.get("/v1/models", headers=headers).status_code == 401
    assert client.get("/v1/traits/plan/values", headers=headers).status_code == 401


def test_6_2_a_new_snapshot_is_what_the_next_query_sees(client: TestClient,
                                                        wh: MemoryWarehouse) -> None:
    assert query(client, "SELECT count(*) FROM customers")["rows"] == [[3]]
    wh.data = dataset(version=2, customers=5)
    body = query(client, "SELECT count(*), (SELECT version FROM meta) FROM customers")
    assert body["rows"] == [[5, 2]] and body["version"] == 2


def test_6_2_no_snapshot_yet_is_a_503() -> None:
    fresh = app_for(MemoryWarehouse(None))
    r = fresh.post("/v1/query", json={"sql": "SELECT 1"}, headers=AUTH)
    assert r.status_code == 503 and r.json()["error"] == "not_ready"


def test_4_1_models_lists_every_model_with_stages_in_order(client: TestClient) -> None:
    r = client.get("/v1/models", headers=AUTH)
    assert r.status_code == 200
    body = r.json()
    versions = [m.pop("version") for m in body]
    assert body == [
        {"model": "aida", "conversion_stage": "action",
         "stages": ["awareness", "interest", "desire", "action"]},
        {"model": "default", "conversion_stage": "decision",
         "stages": ["awareness", "consideration", "decision", "retention", "advocacy"]},
    ]
    # SPEC 6.4: the API says which model version it serves, also in /readyz.
    assert all(re.fullmatch(r"[0-9a-f]{12}", v) for v in versions) and len(set(versions)) == 2
    assert client.get("/readyz").json()["models"] == {"aida": versions[0], "default": versions[1]}
    again = client.get("/v1/models", headers={**AUTH, "If-None-Match": r.headers["etag"]})
    assert again.status_code == 304


def test_6_4_model_version_follows_every_stored_property_of_a_model() -> None:
    base = model_version(["a", "b"], "b", 86400.0)
    assert base == model_version(["a", "b"], "b", 86400)
    others = {model_version(["a", "c"], "c", 86400.0), model_version(["a", "b"], "a", 86400.0),
              model_version(["a", "b"], "b", 3600.0), model_version(["b", "a"], "b", 86400.0)}
    assert base not in others and len(others) == 4


def test_2_3_trait_values_count_customers_most_common_first(wh: MemoryWarehouse) -> None:
    wh.data = dataset(customers=6)  # plans: pro, free, pro, team, pro, free
    client = app_for(wh)
    r = client.get("/v1/traits/plan/values", headers=AUTH)
    assert r.status_code == 200
    assert r.json() == {"trait": "plan", "values": [
        {"value": "pro", "customers": 3}, {"value": "free", "customers": 2},
        {"value": "team", "customers": 1}]}
    top = client.get("/v1/traits/plan/values?top=1", headers=AUTH).json()
    assert top["values"] == [{"value": "pro", "customers": 3}]
    numbers = client.get("/v1/traits/age/values", headers=AUTH).json()
    assert [v["value"] for v in numbers["values"]] == [str(30 + i) for i in range(6)]


def test_2_3_an_unknown_trait_is_a_400_listing_the_known_ones(client: TestClient) -> None:
    r = client.get("/v1/traits/nope/values", headers=AUTH)
    assert r.status_code == 400 and r.json()["error"] == "unknown_trait"
    assert r.json()["known"] == ["age", "plan"]


def test_6_2_the_served_app_documents_query_models_and_traits(tmp_path: Path) -> None:
    app = create_api_app(ApiSettings(data_dir=tmp_path, api_tokens=[SecretStr(TOKEN)]))
    paths = TestClient(app).get("/openapi.json").json()["paths"]
    assert "post" in paths["/v1/query"] and "requestBody" in paths["/v1/query"]["post"]
    assert "get" in paths["/v1/models"] and "get" in paths["/v1/traits/{name}/values"]

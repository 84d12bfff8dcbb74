"""/docs works offline and the OpenAPI document describes the analytics routes (issue 11, 7):
parameters, response schemas, a bearer security scheme; no page of journey loads another host."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.openapi_spec import ROUTES
from api.settings import ApiSettings
from ingest.settings import IngestSettings
from journey.log.embedded import EmbeddedLog
from journey.server import create_api_app, create_app

# An absolute or protocol-relative URL in an attribute, a CSS url()/@import or a JS import.
OUTSIDE = re.compile(r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//"""
                     r"""|url\(\s*["']?\s*(?:https?:)?//|@import\s+["']?(?:https?:)?//"""
                     r"""|\bfrom\s+["'](?:https?:)?//|\bimport\(\s*["'](?:https?:)?//""", re.I)
LOCAL_REF = re.compile(r"""(?:src|href)\s*=\s*["']([^"'#]+)["']""", re.I)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """`journey up`'s single app (collector, API, dashboard, docs)."""
    ingest = IngestSettings(data_dir=tmp_path, write_keys=[SecretStr("wk")], partitions=1)
    log = EmbeddedLog(ingest.log_dir, 1, busy_timeout_s=0.2)
    api = ApiSettings(data_dir=tmp_path, api_tokens=[SecretStr("tok")])
    try:
        with TestClient(create_app(ingest, api, log)) as test_client:
            yield test_client
    finally:
        log.close()


def operations(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {path: methods["get"] for path, methods in spec["paths"].items() if "get" in methods}


def names(op: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["in"] for p in op.get("parameters", [])}


def test_analytics_routes_have_parameters_schemas_and_bearer_security(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer",
        "description": "An API token (JOURNEY_API_TOKENS) with the route's scope."}
    gets = operations(spec)
    assert {"model": "query", "from": "query", "to": "query", "channel": "query",
            "trait": "query"}.items() <= names(gets["/v1/funnel"]).items()
    attribution = {p["name"]: p["schema"] for p in gets["/v1/attribution"]["parameters"]}
    assert attribution["method"]["enum"] == ["first_touch", "last_touch", "linear",
                                             "position_based"]
    assert attribution["by"]["enum"] == ["channel", "source"]
    assert names(gets["/v1/customers/{key}"]) == {"key": "path", "model": "query"}
    assert names(gets["/v1/customers/{key}/events"]) == {
        "key": "path", "limit": "query", "offset": "query"}
    assert names(gets["/v1/sessions"]) == {"from": "query", "to": "query", "channel": "query"}
    for path, op in gets.items():  # analytics, query helpers and dead letters alike
        assert op.get("security") == [{"bearer": []}] or not path.startswith("/v1/"), path
    analytics = {p: op for p, op in gets.items() if p in ROUTES}
    assert len(analytics) >= 11
    for path, op in analytics.items():
        assert op["summary"] == ROUTES[path][0], path
        schema = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema.get("type") in ("object", "array"), path
        assert {"401", "403"} <= op["responses"].keys(), path
    funnel = gets["/v1/funnel"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert set(funnel["properties"]["stages"]["items"]["properties"]) == {
        "stage", "customers", "conversion_from_previous", "conversion_from_first",
        "median_time_to_stage_s"}
    batch = spec["paths"]["/v1/batch"]["post"]
    assert batch["security"] == [{"writeKey": []}]


def test_docs_page_and_its_assets_are_served_locally(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text
    assert not OUTSIDE.search(page.text), OUTSIDE.search(page.text)
    assert '"validatorUrl": null' in page.text
    refs = LOCAL_REF.findall(page.text)
    assert "/docs/assets/swagger-ui-bundle.js" in refs and "/docs/assets/swagger-ui.css" in refs
    for ref in refs:
        asset = client.get(ref)
        assert asset.status_code == 200 and len(asset.content) > 500, ref


def test_no_page_of_journey_references_an_outside_host(client: TestClient) -> None:
    pages = ["/", "/dashboard", "/docs", "/journey.js"]
    seen: set[str] = set()
    while pages:
        path = pages.pop()
        if path in seen or not path.startswith("/"):
            continue
        seen.add(path)
        answer = client.get(path)
        assert answer.status_code == 200, path
        kind = answer.headers.get("content-type", "")
        if "swagger-ui-bundle" in path:
            continue  # the vendored bundle only names hosts in comments and licence strings
        assert not OUTSIDE.search(answer.text), (path, OUTSIDE.search(answer.text))
        if "html" in kind:
            pages += LOCAL_REF.findall(answer.text)
    assert {"/", "/docs", "/docs/assets/swagger-ui.css"} <= seen
    assert any(p.startswith("/static/dashboard/") for p in seen)


def test_api_only_process_serves_docs_too(tmp_path: Path) -> None:
    with TestClient(create_api_app(ApiSettings(data_dir=tmp_path))) as client:
        assert client.get("/docs").status_code == 200
        spec = client.get("/openapi.json").json()
    assert operations(spec)["/v1/kpis"]["security"] == [{"bearer": []}]

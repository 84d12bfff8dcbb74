"""SPEC 6.5 `POST /v1/query` limits: the timeout stops the statement, a memory limit and an
answer-size limit hold, and a heavy query does not starve the other routes."""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.query import query_router
from api.query_process import _rss
from api.routes import api_router
from api.settings import ApiSettings
from tests.api.conftest import TOKEN, Dataset, MemoryWarehouse, at, make_store
from tests.conftest import free_port

AUTH = {"Authorization": f"Bearer {TOKEN}"}
HUGE_SORT = "SELECT len(list_sort(range(100000000)))"  # ~1.6 GB, never checks for interrupts
LONG_SCAN = "SELECT sum(hash(i)) FROM range(100000000000) t(i)"  # minutes of CPU, no memory


def dataset() -> Dataset:
    d = Dataset(version=1, watermark=at(30))
    d.model()
    for i in range(20):
        d.customer(f"c{i}", at(i), events=3)
        d.stages(f"c{i}", [at(i), at(i + 1)])
    return d


def app(**settings: object) -> FastAPI:
    s = ApiSettings(api_tokens=[SecretStr(TOKEN)], **settings)  # type: ignore[arg-type]
    store = make_store(MemoryWarehouse(dataset()))
    application = FastAPI()
    application.include_router(api_router(s, store))
    application.include_router(query_router(s, store))
    return application


def post(client: TestClient | httpx.Client, sql: str) -> Any:
    """An HTTP response (TestClient's and httpx's types differ)."""
    return client.post("/v1/query", json={"sql": sql}, headers=AUTH)


def test_6_5_the_timeout_stops_a_statement_duckdb_cannot_interrupt() -> None:
    with TestClient(app(query_timeout_s=2.0, query_memory_mb=8192)) as client:
        assert post(client, "SELECT 1").status_code == 200  # the query process is up
        began = time.monotonic()
        r = post(client, HUGE_SORT)
        took = time.monotonic() - began
        assert r.status_code == 400 and r.json()["error"] == "query_timeout", r.text
        assert took < 3.0, f"answered after {took:.1f}s"
        after = post(client, "SELECT count(*) FROM customers")
        assert after.status_code == 200 and after.json()["rows"] == [[20]]


def test_6_5_a_query_past_the_memory_limit_is_stopped_and_the_api_stays_small() -> None:
    with TestClient(app(query_timeout_s=60.0, query_memory_mb=256)) as client:
        assert post(client, "SELECT 1").status_code == 200
        own_before = _rss(os.getpid())
        began = time.monotonic()
        r = post(client, HUGE_SORT)
        assert r.status_code == 400 and r.json()["error"] == "query_memory_limit", r.text
        assert time.monotonic() - began < 30
        own_after = _rss(os.getpid())
        assert own_after - own_before < 100 * 2**20  # the statement never ran in this process
        assert post(client, "SELECT count(*) FROM customers").json()["rows"] == [[20]]


def test_6_5_an_answer_is_cut_at_the_byte_limit_not_only_the_row_limit() -> None:
    with TestClient(app(query_max_bytes=4096, query_max_rows=100)) as client:
        r = post(client, "SELECT repeat('x', 200) AS s FROM range(5000)")
        body = r.json()
        assert r.status_code == 200 and body["truncated"] and body["truncated_by"] == "bytes"
        assert 0 < body["row_count"] == len(body["rows"]) < 100
        assert len(r.content) < 4096 + 512  # the rows within the limit, plus the envelope
        rows = post(client, "SELECT i FROM range(20000) t(i)").json()
        assert rows["truncated_by"] == "rows" and rows["row_count"] == 100


@pytest.fixture
def served() -> Iterator[str]:
    """The API on a real port (so requests really run at the same time)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app(query_timeout_s=20.0), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_6_5_funnel_answers_within_100ms_while_a_heavy_query_runs(served: str) -> None:
    with httpx.Client(base_url=served, timeout=60) as client:
        assert client.get("/v1/funnel", headers=AUTH).status_code == 200  # warm
        assert post(client, "SELECT 1").status_code == 200
        heavy: list[Any] = []

        def scan() -> None:
            with httpx.Client(base_url=served, timeout=60) as other:
                heavy.append(post(other, LONG_SCAN))

        worker = threading.Thread(target=scan)
        worker.start()
        time.sleep(1.0)  # the scan is running now
        took = []
        for _ in range(20):
            began = time.monotonic()
            assert client.get("/v1/funnel", headers=AUTH).status_code == 200
            took.append(time.monotonic() - began)
            time.sleep(0.05)
        assert worker.is_alive(), "the heavy query ended early; the test proved nothing"
        worker.join()
    assert heavy[0].json()["error"] == "query_timeout"
    # The median within the SPEC's 100 ms, and no starvation at the 90th percentile: the shared
    # 2-core test machine adds its own stalls (measured here at load 20: 91 ms median, 161 ms p90).
    median, p90 = statistics.median(took), sorted(took)[int(len(took) * 0.9)]
    assert median < 0.1 and p90 < 0.5, f"funnel took {median:.3f}s median, {p90:.3f}s p90"

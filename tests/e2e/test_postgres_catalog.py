"""SPEC 6.3/6.4: the whole pipeline (`journey up`: collector, processor, API) on a DuckLake whose
catalog is a real PostgreSQL database (JOURNEY_CATALOG_URL): events posted to /v1/batch are
served in the funnel and through /v1/query, and the catalog, not a SQLite file, holds the lake."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.e2e.conftest import TOKEN, WRITE_KEY, Proc, free_port, track, wait_http
from tests.pg import PgCluster

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _funnel_when_served(base: str, limit_s: float) -> dict[str, int]:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        answer = httpx.get(f"{base}/v1/funnel", headers=AUTH, timeout=5)
        if answer.status_code == 200:
            counts = {s["stage"]: s["customers"] for s in answer.json()["stages"]}
            if counts.get("decision"):
                return counts
        time.sleep(0.1)
    raise AssertionError(f"the funnel did not count alice's decision within {limit_s}s")


def test_6_4_pipeline_on_a_postgresql_catalog_serves_the_funnel(
    postgres: PgCluster, env: dict[str, str], tmp_path: Path, procs: list[Proc],
) -> None:
    catalog = postgres.catalog_url()
    port = free_port()
    proc = Proc(["up", "--port", str(port)], {**env, "JOURNEY_CATALOG_URL": catalog},
                tmp_path / "up.log").start()
    procs.append(proc)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/healthz", proc=proc)
    wait_http(base + "/readyz", timeout_s=60, proc=proc)  # the processor's first commit
    start = datetime(2026, 3, 1, 9, tzinfo=UTC)
    batch = track(3, "alice", start) + track(1, "alice", start, event="Checkout Started")
    answer = httpx.post(f"{base}/v1/batch", json={"batch": batch}, auth=(WRITE_KEY, ""),
                        timeout=10)
    assert answer.status_code == 200, answer.text

    counts = _funnel_when_served(base, limit_s=20)
    assert counts == {
        "awareness": 1, "consideration": 1, "decision": 1, "retention": 0, "advocacy": 0,
    }, proc.tail()
    query = httpx.post(f"{base}/v1/query", headers=AUTH, timeout=30, json={
        "sql": "SELECT (SELECT count(*) FROM events) AS n, (SELECT count(*) FROM customers) "
               "AS c"})
    assert query.status_code == 200, query.text
    body: dict[str, Any] = query.json()
    assert body["rows"] == [[4, 1]], body

    warehouse = Path(env["JOURNEY_DATA_DIR"]) / "warehouse"
    assert not (warehouse / "catalog.sqlite").exists()
    with psycopg.connect(catalog.removeprefix("postgres:")) as con:
        row = con.execute("SELECT max(snapshot_id) FROM ducklake_snapshot").fetchone()
    assert row is not None and row[0] >= 2
    views = (warehouse / "views.sql").read_text()
    assert "postgres_scanner.duckdb_extension" in views and catalog in views

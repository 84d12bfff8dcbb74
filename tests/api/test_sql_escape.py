"""SPEC 6.2 `POST /v1/query`: no file, network, extension or write access. Every escape attempt
over a real warehouse on disk is refused with 4xx JSON, nothing is written, and the sandbox on its
own (without the parse check) still refuses them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.query import query_router
from api.settings import ApiSettings
from api.sqlguard import sandbox
from api.store import SnapshotStore
from processor.derive import CoreConfig
from processor.stages.model import load_models
from tests.dashboard.conftest import MODELS, commit, demo_events
from warehouse.reader import WarehouseReader
from warehouse.settings import WarehouseSettings
from warehouse.writer import WarehouseWriter

TOKEN = "escape-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def build_warehouse(data_dir: Path, customers: int) -> None:
    """The demo events through the real core and warehouse writer into data_dir."""
    writer = WarehouseWriter(WarehouseSettings(data_dir=data_dir, grace_period_s=0.0))
    writer.open()
    try:
        commit(writer, demo_events(customers), 0, CoreConfig(models=load_models(MODELS)))
    finally:
        writer.close()


def tree_state(root: Path) -> dict[str, str]:
    """Every file under root with a hash of its content."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tmp/data (the warehouse) next to tmp/outside (files an attacker would like to read)."""
    root = tmp_path_factory.mktemp("escape")
    build_warehouse(root / "data", customers=20)
    outside = root / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text("password\nhunter2\n")
    pq.write_table(pa.table({"secret": ["hunter2"]}), outside / "secret.parquet")
    return root


@pytest.fixture(scope="module")
def client(place: Path) -> Iterator[TestClient]:
    settings = ApiSettings(data_dir=place / "data", api_tokens=[SecretStr(TOKEN)],
                           query_timeout_s=1.0)
    store = SnapshotStore(WarehouseReader(settings.warehouse_dir), lambda: datetime.now(UTC),
                          refresh_interval_s=0.0)
    app = FastAPI()
    app.include_router(query_router(settings, store))
    with TestClient(app) as c:
        yield c


def committed_file(place: Path) -> Path:
    return next((place / "data" / "warehouse" / "data").rglob("*.parquet"))


def attempts(place: Path) -> list[str]:
    out, target = place / "outside", committed_file(place)
    return [
        "SELECT * FROM read_csv('/etc/passwd')",
        f"SELECT * FROM read_csv_auto('{out}/secret.csv')",
        f"SELECT * FROM read_parquet('{out}/secret.parquet')",
        f"SELECT * FROM '{out}/secret.parquet'",
        f'SELECT * FROM "{out}/secret.csv"',
        f"COPY (SELECT 1 AS x) TO '{target}' (FORMAT parquet)",
        f"COPY customers TO '{out}/stolen.csv'",
        f"COPY (SELECT 1 AS x) TO '{out}/new.csv'",
        f"EXPORT DATABASE '{out}/export'",
        f"ATTACH '{out}/new.duckdb' AS x",
        "DETACH memory",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "RESET lock_configuration",
        "PRAGMA database_list",
        "CALL pragma_version()",
        "CREATE TABLE t AS SELECT 1",
        "INSERT INTO customers SELECT * FROM customers",
        "UPDATE customers SET traits = '{}'",
        "DELETE FROM customers",
        "DROP VIEW events",
        f"SELECT 1; COPY customers TO '{out}/two.csv'",
        f"SELECT 1 -- comment\n; COPY customers TO '{out}/three.csv'",
        f"SELECT 1 /* ; */ ; ATTACH '{out}/four.duckdb'",
        f"WITH x AS (SELECT content FROM read_text('{out}/secret.csv')) SELECT * FROM x",
        "SELECT * FROM events WHERE event_id IN (SELECT file FROM glob('/etc/*'))",
        f"SELECT (SELECT content FROM read_blob('{out}/secret.csv')) AS c",
        f"SELECT * FROM customers, LATERAL (SELECT * FROM read_csv('{out}/secret.csv'))",
        "SELECT * FROM duckdb_settings()",
        "SELECT * FROM information_schema.tables",
        "SELECT * FROM duckdb_views",
        "SELECT * FROM query('SELECT 1')",
        "WITH a AS (SELECT * FROM duckdb_views), duckdb_views AS (SELECT 1) SELECT * FROM a",
        "SUMMARIZE events",
        "DESCRIBE events",
    ]


def test_6_2_every_escape_attempt_is_refused_with_4xx_json_and_nothing_is_written(
    client: TestClient, place: Path,
) -> None:
    before = tree_state(place)
    for sql in attempts(place):
        r = client.post("/v1/query", json={"sql": sql}, headers=AUTH)
        assert 400 <= r.status_code < 500, (sql, r.status_code, r.text)
        assert r.json()["error"] in ("query_refused", "query_error"), (sql, r.text)
        assert "hunter2" not in r.text and "root:" not in r.text, sql
    assert tree_state(place) == before
    # The views are intact and still readable afterwards.
    r = client.post("/v1/query", json={"sql": "SELECT count(*) FROM events"}, headers=AUTH)
    assert r.status_code == 200 and r.json()["rows"][0][0] > 0, r.text


def test_6_2_a_query_that_takes_too_long_is_interrupted_and_the_next_one_runs(
    client: TestClient,
) -> None:
    slow = "SELECT count(*) FROM range(1000000000000) a, events"
    r = client.post("/v1/query", json={"sql": slow}, headers=AUTH)
    assert r.status_code == 400 and r.json()["error"] == "query_timeout"
    r = client.post("/v1/query", json={"sql": "SELECT count(*) FROM customers"}, headers=AUTH)
    assert r.status_code == 200 and r.json()["rows"][0][0] > 0


@pytest.fixture(scope="module")
def box(place: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The sandbox alone, built from a connection with the real views of the warehouse."""
    reader = WarehouseReader(place / "data" / "warehouse")
    snap = reader.current()
    assert snap is not None
    source = duckdb.connect()
    reader.register_views(source, snap)
    con = sandbox(source)
    source.close()
    yield con
    con.close()


def test_6_2_the_sandbox_reads_its_snapshot_of_the_lake(box: duckdb.DuckDBPyConnection,
                                                         place: Path) -> None:
    settings = WarehouseSettings(data_dir=place / "data")
    with WarehouseWriter(settings) as writer:
        expected = sum(len(chunk) for chunk in writer.iter_events())
    assert expected > 0 and box.execute("SELECT count(*) FROM events").fetchone() == (expected,)


@pytest.mark.parametrize("sql", [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_parquet('{out}/secret.parquet')",
    "COPY (SELECT 1 AS x) TO '{out}/sandboxed.csv'",
    "ATTACH '{out}/sandboxed.duckdb'",
    "INSTALL httpfs",
    "SET enable_external_access = true",
    "SET allowed_paths = ['{out}/secret.csv']",
])
def test_6_2_without_the_parse_check_the_sandbox_still_refuses(
    box: duckdb.DuckDBPyConnection, place: Path, sql: str,
) -> None:
    before = tree_state(place)
    cur = box.cursor()
    with pytest.raises((duckdb.PermissionException, duckdb.InvalidInputException)):
        cur.execute(sql.format(out=place / "outside"))
    cur.close()
    assert tree_state(place) == before

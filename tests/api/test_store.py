"""The snapshot store over the real warehouse (writer -> DuckLake -> reader -> views)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.metrics.filters import CustomerFilter, load_model
from api.metrics.funnel import funnel
from api.metrics.prepared import TABLES
from api.settings import ApiSettings
from api.store import INDEXES, MATERIALISED, SnapshotStore
from journey.facts import (
    FACT_TABLES,
    Changes,
    CustomerFacts,
    CustomerRow,
    EventStageRow,
    IdentityRow,
    SessionRow,
    StageEntryRow,
)
from journey.metrics import API_REGISTRY
from journey.schema import Event, IdentityKey
from tests.api.conftest import TOKEN, FakeClock
from warehouse.reader import WarehouseReader
from warehouse.settings import WarehouseSettings
from warehouse.tables import ModelRow
from warehouse.writer import WarehouseWriter

T0 = datetime(2026, 3, 2, tzinfo=UTC)
MODEL = [ModelRow("default", s, i, s == "decision", 90 * 86400.0) for i, s in
         enumerate(("awareness", "consideration", "decision", "retention", "advocacy"))]


def facts(cid: str, reached: int, hours: float) -> CustomerFacts:
    """A customer that reached stages 0..reached-1, one each `hours` after its first event."""
    when = [T0 + timedelta(hours=hours * i) for i in range(reached)]
    return CustomerFacts(
        customer=CustomerRow(cid, cid, T0, when[-1], reached, "web", "(direct)", "(none)",
                             {"plan": "pro"}),
        identities=[IdentityRow(cid, "user_id", cid, T0)],
        sessions=[SessionRow(f"s-{cid}", cid, "web", T0, when[-1], 0.0, reached, reached, None,
                             "(direct)", "(none)", None, ())],
        stage_entries=[StageEntryRow(cid, "default", MODEL[i].stage, i, w, False, f"{cid}-{i}")
                       for i, w in enumerate(when)],
        event_stages=[EventStageRow(f"{cid}-{i}", cid, f"s-{cid}", "default", w, "Page Viewed",
                                    "web", None, MODEL[i].stage, i) for i, w in enumerate(when)],
    )


def event(cid: str, i: int) -> Event:
    return Event(event_id=f"{cid}-{i}", type="page", event="Page Viewed", channel="web",
                 timestamp=T0 + timedelta(hours=i), received_at=T0 + timedelta(hours=i),
                 keys=(IdentityKey(type="user_id", value=cid),), source="(direct)",
                 medium="(none)")


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[WarehouseWriter]:
    # No inlining: every table has Parquet files, as a busy warehouse does.
    with WarehouseWriter(WarehouseSettings(data_dir=tmp_path, inline_row_limit=0)) as w:
        yield w


def commit(writer: WarehouseWriter, customers: list[CustomerFacts], watermark: datetime) -> None:
    """One processor-like commit: the customers' rows replaced, their new events stored."""
    changes = Changes()
    for f in customers:
        for table in FACT_TABLES:
            changes.delete(table, "customer_id", (f.customer.customer_id,))
        changes.add_facts(f)
    events = [(event(f.customer.customer_id, i), 0, i) for f in customers
              for i in range(f.customer.event_count)]
    old = writer.state().offsets.get(0, 0)
    writer.commit(events[old:], changes, {0: len(events)}, watermark, MODEL)


def test_6_3_store_reads_the_warehouse_and_follows_new_versions(
    writer: WarehouseWriter,
) -> None:
    clock = FakeClock()
    store = SnapshotStore(WarehouseReader(writer.root), clock, refresh_interval_s=60)
    assert store.current() is None
    commit(writer, [facts("a", 3, 2.0), facts("b", 2, 1.0)], T0 + timedelta(days=1))
    clock.now += timedelta(seconds=61)
    with store.cursor() as (bound, cur):
        assert bound.watermark == T0 + timedelta(days=1)
        kinds = dict(cur.execute("SELECT table_name, table_type FROM information_schema.tables")
                     .fetchall())
        assert {kinds[t] for t in MATERIALISED} == {"BASE TABLE"}
        assert kinds["events"] == kinds["event_stages"] == "VIEW"
        indexed = {str(r[0]) for r in cur.execute("SELECT table_name FROM duckdb_indexes()")
                   .fetchall()}
        prepared = {t.name for t in TABLES if t.per_customer or t.additive}
        assert indexed == {t for t, _ in INDEXES} | prepared
        stages = funnel(cur, load_model(cur, "default"), CustomerFilter())["stages"]
        assert [(s["customers"], s["median_time_to_stage_s"]) for s in stages[:3]] == [
            (2, 0.0), (2, 1.5 * 3600), (1, 4 * 3600)]
        first = bound.version

    commit(writer, [facts("a", 3, 2.0), facts("b", 2, 1.0), facts("c", 1, 1.0)], T0)
    with store.cursor() as (bound, _):
        assert bound.version == first  # within the refresh interval: the old snapshot
    clock.now += timedelta(seconds=61)
    with store.cursor() as (bound, cur):
        assert bound.version > first
        assert cur.execute("SELECT count(*) FROM customers").fetchone() == (3,)


def test_6_4_the_store_times_each_snapshot_and_its_delay_from_the_commit(
    writer: WarehouseWriter,
) -> None:
    def count(name: str, **labels: str) -> float:
        return API_REGISTRY.get_sample_value(f"{name}_count", labels) or 0.0

    def delay() -> float:
        return API_REGISTRY.get_sample_value("journey_api_snapshot_delay_seconds_sum") or 0.0

    delayed = delay()
    before = (count("journey_api_snapshot_load_seconds", how="built"),
              count("journey_api_snapshot_load_seconds", how="advanced"),
              count("journey_api_snapshot_delay_seconds"))
    clock = FakeClock()
    store = SnapshotStore(WarehouseReader(writer.root), clock, refresh_interval_s=0)
    commit(writer, [facts("a", 3, 2.0)], T0 + timedelta(days=1))
    assert store.current() is not None  # built whole; the API's start is no delay
    commit(writer, [facts("a", 3, 2.0), facts("b", 2, 1.0)], T0 + timedelta(days=1))
    began = time.time()
    assert store.current() is not None  # moved by the change
    spent = time.time() - began
    after = (count("journey_api_snapshot_load_seconds", how="built"),
             count("journey_api_snapshot_load_seconds", how="advanced"),
             count("journey_api_snapshot_delay_seconds"))
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 1]
    assert delay() - delayed >= spent  # from the commit, before the store began to move


def test_6_4_a_request_reads_one_snapshot_while_the_store_moves_to_the_next(
    writer: WarehouseWriter,
) -> None:
    store = SnapshotStore(WarehouseReader(writer.root), FakeClock(), refresh_interval_s=0)
    commit(writer, [facts("a", 3, 2.0), facts("b", 2, 1.0)], T0 + timedelta(days=1))
    counts = ("SELECT (SELECT count(*) FROM customers), (SELECT sum(customers) FROM __j_csize), "
              "(SELECT count(*) FROM event_stages), (SELECT sum(n) FROM __j_touch)")
    with store.cursor() as (old, cur):
        commit(writer, [facts("a", 3, 2.0), facts("b", 2, 1.0), facts("c", 1, 1.0)],
               T0 + timedelta(days=2))
        new = store.refresh(force=True)
        assert new is not None and new.version > old.version
        assert new.con is old.con and (store.full_builds, store.advances) == (1, 1)
        # The request that began before the move still reads its own snapshot, whole.
        assert cur.execute(counts).fetchone() == (2, 2, 5, 5)
        assert cur.execute("SELECT max(version) FROM meta").fetchone() == (old.version,)
    with store.cursor() as (bound, cur):
        assert bound.version == new.version and bound.watermark == T0 + timedelta(days=2)
        assert cur.execute(counts).fetchone() == (3, 3, 6, 6)
        stages = funnel(cur, load_model(cur, "default"), CustomerFilter())["stages"]
        assert [s["customers"] for s in stages[:3]] == [3, 2, 1]


def attached_snapshots(store: SnapshotStore) -> set[str]:
    bound = store.current()
    assert bound is not None
    return {str(r[0]) for r in bound.con.execute(
        "SELECT database_name FROM duckdb_databases() WHERE database_name LIKE 'journey_lake_v%'")
        .fetchall()}


def test_6_4_a_request_outlives_many_advances_and_its_snapshot_is_let_go_after(
    writer: WarehouseWriter,
) -> None:
    store = SnapshotStore(WarehouseReader(writer.root), FakeClock(), refresh_interval_s=0)
    people = [facts("a", 3, 2.0)]
    commit(writer, people, T0)
    store.refresh(force=True)  # built whole, over the lake attached as journey_lake
    people.append(facts("b", 2, 1.0))
    commit(writer, people, T0 + timedelta(days=1))
    store.refresh(force=True)  # advanced: its views read journey_lake_v<version>
    with store.cursor() as (old, cur):
        # A slow request (an export, a big query) while commits keep coming.
        for i in range(12):
            people.append(facts(f"c{i}", 1, 1.0))
            commit(writer, people, T0 + timedelta(days=2 + i))
            store.refresh(force=True)
        assert store.advances == 13
        # Its snapshot's lake attachment is still there: event_stages is a view over it.
        assert cur.execute("SELECT count(*) FROM event_stages").fetchone() == (5,)
        assert f"journey_lake_v{old.version}" in attached_snapshots(store)
    people.append(facts("d", 1, 1.0))
    commit(writer, people, T0 + timedelta(days=20))
    newest = store.refresh(force=True)
    assert newest is not None
    # Read by no request any more: only the served snapshot and the one before stay attached.
    held = attached_snapshots(store)
    assert len(held) == 2 and f"journey_lake_v{newest.version}" in held


def test_6_4_a_changed_model_is_served_from_a_full_build(writer: WarehouseWriter) -> None:
    store = SnapshotStore(WarehouseReader(writer.root), FakeClock(), refresh_interval_s=0)
    commit(writer, [facts("a", 3, 2.0)], T0 + timedelta(days=1))
    assert store.refresh(force=True) is not None
    longer = [ModelRow(m.model, m.stage, m.stage_index, m.conversion_stage, 7 * 86400.0)
              for m in MODEL]
    writer.replace_derived([Changes()], longer, T0 + timedelta(days=1))
    with store.cursor() as (_, cur):
        lapse = cur.execute("SELECT DISTINCT lapse_after_s FROM models").fetchall()
        assert lapse == [(7 * 86400.0,)]
    assert (store.full_builds, store.advances) == (2, 0)


def test_6_4_a_rebuild_that_logged_no_deletes_is_served_from_a_full_build(
    writer: WarehouseWriter,
) -> None:
    store = SnapshotStore(WarehouseReader(writer.root), FakeClock(), refresh_interval_s=0)
    commit(writer, [facts("a", 3, 2.0), facts("b", 2, 1.0)], T0 + timedelta(days=1))
    assert store.refresh(force=True) is not None
    rebuilt = Changes()
    rebuilt.add_facts(facts("b", 3, 1.0))  # same models, every table emptied: a rebuild's
    writer.replace_derived([rebuilt], MODEL, T0 + timedelta(days=1))
    # Then a logged commit (offsets: the helper's events are those of the customers given).
    commit(writer, [facts("a", 3, 2.0), facts("b", 3, 1.0), facts("c", 1, 1.0)],
           T0 + timedelta(days=1))
    with store.cursor() as (_, cur):
        assert cur.execute("SELECT customer_id, event_count FROM customers "
                           "ORDER BY 1").fetchall() == [("a", 3), ("b", 3), ("c", 1)]
        assert cur.execute("SELECT count(*) FROM event_stages").fetchone() == (7,)
    assert (store.full_builds, store.advances) == (2, 0)


def test_6_2_api_over_the_real_warehouse(writer: WarehouseWriter) -> None:
    commit(writer, [facts("a", 3, 2.0), facts("b", 2, 1.0)], T0 + timedelta(days=1))
    store = SnapshotStore(WarehouseReader(writer.root), FakeClock())
    client = TestClient(create_app(ApiSettings(api_tokens=[TOKEN]), store))  # type: ignore[list-item]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    events = client.get("/v1/customers/user_id:a/events", headers=auth).json()
    assert [e["event_id"] for e in events] == ["a-0", "a-1", "a-2"]
    assert events[1]["timestamp"] == "2026-03-02T01:00:00Z"
    c = client.get("/v1/customers/a", headers=auth).json()
    assert (c["stage"], c["last_seen"], c["lapsed"]) == ("decision", "2026-03-02T04:00:00Z", False)
    jm = client.get("/v1/journey-map", headers=auth).json()
    assert [s["customers"] for s in jm["stages"]] == [2, 2, 1, 0, 0]
    assert jm["kpis"]["watermark"] == "2026-03-03T00:00:00Z"


def test_6_2_a_vanished_snapshot_file_is_a_retryable_503(writer: WarehouseWriter) -> None:
    commit(writer, [facts("a", 3, 2.0)], T0)
    store = SnapshotStore(WarehouseReader(writer.root), FakeClock(), refresh_interval_s=60)
    client = TestClient(create_app(ApiSettings(api_tokens=[TOKEN]), store))  # type: ignore[list-item]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get("/v1/customers/a/events", headers=auth).status_code == 200
    for path in (writer.root / "data").rglob("*.parquet"):
        path.unlink()  # as the writer's clean-up does once a newer version's grace period ends
    r = client.get("/v1/customers/a/events?limit=5", headers=auth)
    assert r.status_code == 503 and r.json()["error"] == "snapshot_unreadable"


def test_6_1_api_only_process_serves_the_warehouse(writer: WarehouseWriter) -> None:
    commit(writer, [facts("a", 3, 2.0), facts("b", 1, 1.0)], T0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "JOURNEY_DATA_DIR": str(writer.root.parent), "JOURNEY_PORT": str(port),
           "JOURNEY_API_TOKENS": "t1,t2", "PYTHONPATH": str(Path(__file__).parents[2])}
    proc = subprocess.Popen([sys.executable, "-m", "api.app"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "API did not start"
            time.sleep(0.1)
        kpis = httpx.get(f"{url}/v1/kpis", headers={"Authorization": "Bearer t2"}).json()
        assert (kpis["customers"], kpis["conversion_rate"]) == (2, 0.5)
        assert httpx.get(f"{url}/v1/kpis").status_code == 401
    finally:
        proc.terminate()
        proc.wait(10)

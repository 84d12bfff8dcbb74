"""Readers: cached snapshots, typed views, views.sql, and consistency against a live writer."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import duckdb
from warehouse_workload import make_event, make_facts, snapshot_figures

from warehouse.reader import VIEWS_SQL, WarehouseReader, register_views, views_sql
from warehouse.settings import WarehouseSettings
from warehouse.tables import SCHEMAS, ModelRow, bucket_of, duckdb_type
from warehouse.writer import WarehouseWriter

WORKLOAD = Path(__file__).with_name("warehouse_workload.py")


def _column_types(con: duckdb.DuckDBPyConnection, view: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in con.execute(f'DESCRIBE "{view}"').fetchall()]


def _expected_types(table: str) -> list[tuple[str, str]]:
    return [(f.name, duckdb_type(f.type)) for f in SCHEMAS[table]]


def test_current_is_none_before_the_first_commit(tmp_path: Path) -> None:
    assert WarehouseReader(tmp_path / "warehouse").current() is None


def test_current_is_cached_until_the_manifest_is_replaced(writer: WarehouseWriter) -> None:
    writer.commit([], {}, {0: 1}, None, None)
    reader = WarehouseReader(writer.root)
    first = reader.current()
    assert first is not None and reader.current() is first
    # Two commits in a row, well within one file-time tick, must still be told apart.
    writer.commit([], {}, {0: 2}, None, None)
    writer.commit([], {}, {0: 3}, None, None)
    latest = reader.current()
    assert latest is not None and latest.version == 3 and latest.manifest.offsets == {0: 3}


def test_6_3_empty_tables_are_typed_empty_views(writer: WarehouseWriter) -> None:
    writer.commit([], {}, {}, None, None)
    snap = WarehouseReader(writer.root).current()
    assert snap is not None
    con = duckdb.connect()
    register_views(con, snap)
    for table in SCHEMAS:
        assert _column_types(con, table) == _expected_types(table)
        assert con.execute(f'SELECT count(*) FROM "{table}"').fetchone() == (0,)
    assert con.execute("SELECT version, watermark IS NULL FROM meta").fetchone() == (1, True)


def test_6_3_views_over_files_have_the_documented_column_types(writer: WarehouseWriter) -> None:
    facts = {bucket_of("c1", 8): [make_facts("c1", 3)]}  # odd count: a survey row too
    models = [ModelRow("default", "awareness", 0, False, 90.0)]
    writer.commit([(make_event(0, "c1"), 0, 0)], facts, {0: 1}, None, models)
    snap = WarehouseReader(writer.root).current()
    assert snap is not None and all(snap.paths(t) for t in SCHEMAS)
    con = duckdb.connect()
    register_views(con, snap)
    for table in SCHEMAS:
        assert _column_types(con, table) == _expected_types(table)


def test_6_3_views_sql_opens_in_a_fresh_duckdb_with_absolute_paths(
    writer: WarehouseWriter,
) -> None:
    state = writer.commit([(make_event(0, "c1"), 0, 0)], {}, {0: 1},
                          make_event(0, "c1").timestamp, None)
    text = (writer.root / VIEWS_SQL).read_text()
    snap = WarehouseReader(writer.root).current()
    assert snap is not None and text == views_sql(snap)
    assert f"'{writer.root}/events/" in text and writer.root.is_absolute()
    con = duckdb.connect()
    con.execute(text)
    row = con.execute(
        "SELECT version, epoch(watermark)::BIGINT, (SELECT count(*) FROM events) FROM meta"
    ).fetchone()
    assert state.watermark is not None
    assert row == (state.version, int(state.watermark.timestamp()), 1)


def test_6_3_reader_in_another_process_sees_whole_versions_while_the_writer_commits(
    tmp_path: Path,
) -> None:
    child = subprocess.Popen(
        [sys.executable, str(WORKLOAD), str(tmp_path), "8", "30"], stdout=subprocess.DEVNULL
    )
    reader = WarehouseReader(tmp_path / "warehouse")
    seen: set[int] = set()
    try:
        while child.poll() is None or not seen:
            snap = reader.current()
            if snap is None:
                time.sleep(0.01)
                continue
            version, events, customer_events, session_events = snapshot_figures(snap)
            # One version everywhere: the manifest, the meta view and every table agree.
            assert version == snap.version
            assert events == snap.manifest.rows("events") == snap.manifest.offsets[0]
            assert customer_events == session_events == events
            seen.add(version)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == 0
    assert len(seen) >= 3, f"the reader saw too few versions to prove anything: {seen}"
    final = reader.current()
    assert final is not None and final.version == 30 and final.manifest.rows("events") == 600


def test_6_3_a_key_value_directory_in_the_root_adds_no_column(tmp_path: Path) -> None:
    settings = WarehouseSettings(data_dir=tmp_path / "run=1", buckets=8)
    with WarehouseWriter(settings) as writer:
        writer.commit([(make_event(0, "c1"), 0, 0)], {bucket_of("c1", 8): [make_facts("c1", 1)]},
                      {0: 1}, None, None)
        snap = WarehouseReader(writer.root).current()
    assert snap is not None
    con = duckdb.connect()
    register_views(con, snap)
    assert _column_types(con, "events") == _expected_types("events")
    assert _column_types(con, "customers") == _expected_types("customers")

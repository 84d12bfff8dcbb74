"""Readers of the DuckLake (SPEC 6.3): the newest snapshot, views pinned to one snapshot with the
documented columns and `meta`, the analysts' init file, and whole commits only, from another
process while the writer commits on."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import duckdb
from warehouse_workload import T0, changes_for, make_event, snapshot_figures, workload

from journey.facts import Changes
from warehouse import sqlitecat
from warehouse.lake import LAKE
from warehouse.reader import VIEWS_SQL, WarehouseReader, register_views, views_sql
from warehouse.settings import WarehouseSettings
from warehouse.tables import SCHEMAS, ModelRow, duckdb_type
from warehouse.writer import WarehouseWriter

WORKLOAD = Path(__file__).with_name("warehouse_workload.py")
MODELS = [ModelRow("default", "awareness", 0, False, 90.0)]
META = [("version", "BIGINT"), ("committed_at", "TIMESTAMP WITH TIME ZONE"),
        ("watermark", "TIMESTAMP WITH TIME ZONE")]


def _column_types(con: duckdb.DuckDBPyConnection, view: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in con.execute(f'DESCRIBE "{view}"').fetchall()]


def _expected_types(table: str) -> list[tuple[str, str]]:
    return [(f.name, duckdb_type(f.type)) for f in SCHEMAS[table]]


def _pinned(writer: WarehouseWriter) -> duckdb.DuckDBPyConnection:
    snap = WarehouseReader(writer.root, writer.settings.catalog_url).current()
    assert snap is not None
    con = duckdb.connect()
    register_views(con, snap)
    return con


def _commit_customers(writer: WarehouseWriter, first: int, n: int) -> None:
    """n events of n new customers (one each) with their facts and offsets."""
    events = [(make_event(i, f"c{i:04d}"), 0, i) for i in range(first, first + n)]
    counts = Counter(e.primary_key.value for e, _, _ in events)
    writer.commit(events, changes_for(counts, set(counts)), {0: first + n},
                  events[-1][0].timestamp, MODELS)


def test_6_3_current_is_none_until_the_first_commit_then_the_newest(
    writer: WarehouseWriter,
) -> None:
    reader = WarehouseReader(writer.root, writer.settings.catalog_url)
    assert reader.current() is None  # the lake exists, nothing is committed in it yet
    writer.commit([], Changes(), {0: 1}, None)
    first = reader.current()
    assert first is not None and first.version == writer.state().version
    writer.commit([], Changes(), {0: 2}, None)
    writer.commit([], Changes(), {0: 3}, None)
    latest = reader.current()
    assert latest is not None and latest.version == writer.state().version > first.version
    assert reader.offsets(latest) == {0: 3} and reader.offsets(first) == {0: 1}


def test_6_3_empty_tables_are_typed_empty_views_and_meta_has_one_row(
    writer: WarehouseWriter,
) -> None:
    writer.commit([], Changes(), {}, None)
    con = _pinned(writer)
    for table in SCHEMAS:
        assert _column_types(con, table) == _expected_types(table)
        assert con.execute(f'SELECT count(*) FROM "{table}"').fetchone() == (0,)
    assert _column_types(con, "meta") == META
    row = con.execute("SELECT version, committed_at IS NOT NULL, watermark FROM meta").fetchall()
    assert row == [(writer.state().version, True, None)]


def test_6_3_views_over_parquet_files_have_the_documented_columns(
    settings: WarehouseSettings,
) -> None:
    # inline_row_limit=0: every insert is a Parquet file, not rows inlined in the catalog.
    settings = settings.model_copy(update={"inline_row_limit": 0})
    with WarehouseWriter(settings) as writer:
        _commit_customers(writer, 0, 3)  # odd event counts: a survey row too
        assert list((writer.root / "data").rglob("*.parquet"))
        con = _pinned(writer)
        for table in SCHEMAS:
            assert _column_types(con, table) == _expected_types(table)
            assert con.execute(f'SELECT count(*) > 0 FROM "{table}"').fetchone() == (True,), table
        state = writer.state()
        assert con.execute("SELECT version, committed_at, watermark FROM meta").fetchall() == [
            (state.version, state.committed_at, state.watermark)]


def test_6_3_a_lake_from_before_a_table_existed_reads_it_as_an_empty_typed_view(
    writer: WarehouseWriter,
) -> None:
    """An API started on a lake an older release wrote (no account_events yet) serves it: the
    processor's upgrade creates the table, and until then it reads as empty."""
    _commit_customers(writer, 0, 2)
    writer.transact(lambda con: con.execute(
        f"DROP TABLE {LAKE}.account_events; DROP TABLE {LAKE}.identity_conflicts"))
    con = _pinned(writer)
    for table in ("account_events", "identity_conflicts"):
        assert _column_types(con, table) == _expected_types(table)
        assert con.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM accounts").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM customers").fetchone() == (2,)


def test_6_3_views_sql_opens_in_a_fresh_duckdb_and_follows_each_newest_commit(
    writer: WarehouseWriter,
) -> None:
    _commit_customers(writer, 0, 2)
    text = (writer.root / VIEWS_SQL).read_text()
    assert text == views_sql(writer.location) and writer.location.catalog in text
    con = duckdb.connect()
    con.execute(text)
    assert con.execute("SELECT version, (SELECT count(*) FROM events) FROM meta").fetchone() == (
        writer.state().version, 2)
    _commit_customers(writer, 2, 3)
    assert con.execute("SELECT version, (SELECT count(*) FROM events) FROM meta").fetchone() == (
        writer.state().version, 5)


def test_6_3_a_pinned_snapshot_stays_readable_while_the_writer_commits_and_maintains(
    settings: WarehouseSettings,
) -> None:
    settings = settings.model_copy(update={"inline_row_limit": 0, "grace_period_s": 600.0})
    with WarehouseWriter(settings) as writer:
        _commit_customers(writer, 0, 4)
        pinned = _pinned(writer)
        version = writer.state().version
        before = pinned.execute("SELECT (SELECT count(*) FROM events), "
                                "(SELECT sum(event_count) FROM customers) ").fetchone()
        for start in range(4, 40, 4):
            _commit_customers(writer, start, 4)
        # Merging and cleanup inside the grace period leave the pinned snapshot's files alone.
        writer.maintain(now=time.time() + 60)
        _commit_customers(writer, 40, 4)
        assert pinned.execute("SELECT version FROM meta").fetchone() == (version,)
        assert pinned.execute("SELECT (SELECT count(*) FROM events), "
                              "(SELECT sum(event_count) FROM customers) ").fetchone() == before
        assert before == (4, 4)
        fresh = _pinned(writer)
        assert fresh.execute("SELECT count(*) FROM events").fetchone() == (44,)


def test_6_3_reader_in_another_process_sees_whole_commits_only(tmp_path: Path) -> None:
    with WarehouseWriter(WarehouseSettings(data_dir=tmp_path)) as writer:
        workload(writer, 1)  # the lake exists before the child starts committing
    child = subprocess.Popen([sys.executable, str(WORKLOAD), str(tmp_path), "10", "30"],
                             stdout=subprocess.DEVNULL)
    reader = WarehouseReader(tmp_path / "warehouse")
    seen: set[int] = set()
    try:
        while child.poll() is None or not seen:
            snap = reader.current()
            assert snap is not None
            version, events, customer_events, session_events, offset = snapshot_figures(snap)
            # One commit everywhere: the pin, meta, the events, every derived table, the offsets.
            assert version == snap.version
            assert events == customer_events == session_events == offset
            assert events % 20 == 0
            seen.add(version)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == 0
    assert len(seen) >= 3, f"the reader saw too few commits to prove anything: {seen}"
    final = reader.current()
    assert final is not None
    assert snapshot_figures(final)[1:] == (620, 620, 620, 620)


def test_6_3_readers_in_the_writers_process_poll_and_read_while_it_commits(
    tmp_path: Path,
) -> None:
    # The API's 0.1 s poll used Python's sqlite3 beside DuckDB's own copy of SQLite: in one
    # process it truncated the catalog's WAL index under DuckDB (a bus error within a few
    # commits, or "database disk image is malformed"). In a child, so a crash fails the test.
    done = subprocess.run([sys.executable, str(WORKLOAD), str(tmp_path), "10", "12", "--readers"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    read = int(done.stdout.split("read ")[1].split()[0])
    assert read >= 3, f"the readers saw too few commits to prove anything: {done.stdout}"
    assert sqlitecat.rows(tmp_path / "warehouse" / "catalog.sqlite",
                          "PRAGMA integrity_check") == [("ok",)]


def test_6_3_an_idle_writer_leaves_no_read_of_the_catalog_open(tmp_path: Path) -> None:
    # A query result left pending (fetchone) kept DuckLake's statement on the SQLite catalog,
    # and so a read transaction, open until the writer's next query: another process's
    # truncating checkpoint (erasure's VACUUM) then waited for it forever.
    truncate = ("import sqlite3, sys; con = sqlite3.connect(sys.argv[1], timeout=0.1, "
                "isolation_level=None); con.execute('VACUUM'); "
                "print(con.execute('PRAGMA wal_checkpoint(TRUNCATE)').fetchone()[0])")
    with WarehouseWriter(WarehouseSettings(data_dir=tmp_path)) as writer:
        for step in (lambda: workload(writer, 2), writer.maintain):
            step()
            done = subprocess.run([sys.executable, "-c", truncate,
                                   str(writer.root / "catalog.sqlite")],
                                  capture_output=True, text=True, timeout=60)
            assert done.stdout.strip() == "0", done  # 1: busy, a reader holds the WAL


def test_6_3_a_key_value_directory_above_the_lake_adds_no_column(
    settings: WarehouseSettings,
) -> None:
    settings = settings.model_copy(
        update={"data_dir": settings.data_dir / "run=1", "inline_row_limit": 0})
    with WarehouseWriter(settings) as writer:
        writer.commit([(make_event(0, "c1", timestamp=T0), 0, 0)],
                      changes_for(Counter({"c1": 1}), {"c1"}), {0: 1}, None)
        con = _pinned(writer)
    assert _column_types(con, "events") == _expected_types("events")
    assert _column_types(con, "customers") == _expected_types("customers")

"""The DuckLake writer: commits, offsets, deletes and inserts, rebuilds, reads back, upkeep."""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from warehouse_workload import T0, changes_for, make_event, make_facts

from journey.facts import Changes, SessionRow, StateRow
from journey.hashing import key_hash
from warehouse import maintain as maintain_module
from warehouse import sqlitecat
from warehouse import writer as writer_module
from warehouse.errors import CommitError, WarehouseLockedError, WarehouseMemoryError
from warehouse.reader import WarehouseReader, register_views
from warehouse.settings import WarehouseSettings
from warehouse.statements import stored_tables
from warehouse.tables import ModelRow
from warehouse.writer import WarehouseWriter

MODELS = [ModelRow("default", "awareness", 0, False, 0.0)]


def views(writer: WarehouseWriter) -> Iterator[duckdb.DuckDBPyConnection]:
    reader = WarehouseReader(writer.root, writer.settings.catalog_url)
    snap = reader.current()
    assert snap is not None
    con = duckdb.connect()
    register_views(con, snap)
    yield con
    con.close()


def rows(writer: WarehouseWriter, sql: str) -> list[tuple[object, ...]]:
    for con in views(writer):
        return con.execute(sql).fetchall()
    raise AssertionError


def test_6_3_commit_stores_events_rows_offsets_and_watermark(writer: WarehouseWriter) -> None:
    first = writer.state().version
    events = [(make_event(i, "alice"), 0, i) for i in range(3)]
    done = writer.commit(events, changes_for({"alice": 3}, {"alice"}), {0: 3},  # type: ignore[arg-type]
                         events[-1][0].timestamp, MODELS)
    assert done.offsets == {0: 3} and done.version > first
    assert done.watermark == T0 + timedelta(seconds=2)
    # An older watermark never moves it back; a commit without offsets keeps them.
    later = writer.commit([], Changes(), {}, T0)
    assert later.watermark == done.watermark and later.offsets == {0: 3}
    assert rows(writer, "SELECT count(*), min(key_hash) = max(key_hash) FROM events") == [(3, True)]
    assert rows(writer, "SELECT customer_id, event_count FROM customers") == [("alice", 3)]
    assert rows(writer, "SELECT version, watermark FROM meta") == [(later.version, later.watermark)]
    writer.close()
    assert writer.open() == later  # what is committed survives a reopen


def test_6_3_offsets_never_go_back(writer: WarehouseWriter) -> None:
    writer.commit([], Changes(), {0: 10, 1: 4}, None)
    with pytest.raises(CommitError):
        writer.commit([(make_event(1, "bob"), 0, 9)], Changes(), {0: 9}, None)
    assert writer.state().offsets == {0: 10, 1: 4}
    assert rows(writer, "SELECT count(*) FROM events") == [(0,)]


def test_6_3_deletes_then_inserts_replace_only_the_changed_rows(writer: WarehouseWriter) -> None:
    writer.commit([], changes_for({"a": 1, "b": 1}, {"a", "b"}), {}, None)  # type: ignore[arg-type]
    changes = changes_for({"a": 5}, {"a"})  # type: ignore[arg-type]
    writer.commit([], changes, {}, None)
    assert rows(writer, "SELECT customer_id, event_count FROM customers ORDER BY 1") == [
        ("a", 5), ("b", 1)]
    moved = SessionRow("s-b", "b", "web", T0, T0, 0.0, 9, 0, None, "x", "y", None, ())
    by_session = Changes()
    by_session.delete("sessions", "session_id", frozenset({"s-b", "it's-quoted'"}))
    by_session.add("sessions", [moved])
    writer.commit([], by_session, {}, None)
    assert rows(writer, "SELECT session_id, event_count FROM sessions ORDER BY 1") == [
        ("s-a", 5), ("s-b", 9)]


def test_6_4_a_table_never_written_is_not_deleted_from_until_its_first_rows(
    writer: WarehouseWriter,
) -> None:
    def stored() -> frozenset[str]:
        seen: list[frozenset[str]] = []
        writer.transact(lambda con: seen.append(stored_tables(con)))
        return seen[0]

    # An even count has no survey row: the commit's delete from `surveys` has nothing to find.
    writer.commit([], changes_for(Counter({"a": 2}), {"a"}), {}, None)
    assert "customers" in stored() and "surveys" not in stored()
    writer.commit([], changes_for(Counter({"a": 3}), {"a"}), {}, None)  # its first survey row
    assert "surveys" in stored()
    assert rows(writer, "SELECT customer_id FROM surveys") == [("a",)]
    # From now on the delete runs: the survey row goes with the next even count.
    writer.commit([], changes_for(Counter({"a": 4}), {"a"}), {}, None)
    assert rows(writer, "SELECT count(*) FROM surveys") == [(0,)]
    assert rows(writer, "SELECT event_count FROM customers") == [(4,)]


@pytest.mark.parametrize(("table", "column"), [("events", "event_id"), ("customers", "nope"),
                                               ("models", "model")])
def test_a_bad_delete_is_refused_and_commits_nothing(
    writer: WarehouseWriter, table: str, column: str
) -> None:
    writer.commit([], Changes(), {}, None)  # a first snapshot for the reader to pin
    bad = changes_for({"a": 1}, {"a"})  # type: ignore[arg-type]
    bad.delete(table, column, frozenset({"x"}))
    version = writer.state().version
    with pytest.raises(CommitError):
        writer.commit([(make_event(0, "a"), 0, 0)], bad, {0: 1}, None)
    assert writer.state().version == version
    assert rows(writer, "SELECT (SELECT count(*) FROM events), "
                             "(SELECT count(*) FROM customers), version FROM meta") == [
        (0, 0, version)]


def test_replace_derived_swaps_every_derived_row_in_one_commit(writer: WarehouseWriter) -> None:
    events = [(make_event(i, "a"), 0, i) for i in range(2)]
    writer.commit(events, changes_for({"a": 2, "b": 1}, {"a", "b"}), {0: 2}, None)  # type: ignore[arg-type]
    chunks = (changes_for({c: 7}, set()) for c in ("x", "y"))  # type: ignore[arg-type]
    rebuilt = [Changes(rows={"customers": [make_facts(c, 7).customer]}) for c in ("x", "y")]
    writer.replace_derived(iter(rebuilt), MODELS)
    del chunks
    assert rows(writer, "SELECT customer_id FROM customers ORDER BY 1") == [("x",), ("y",)]
    assert rows(writer, "SELECT count(*) FROM sessions UNION ALL SELECT count(*) FROM "
                             "events UNION ALL SELECT count(*) FROM models") == [(0,), (2,), (1,)]
    assert writer.state().offsets == {0: 2}


def test_a_rebuild_transaction_keeps_no_chunk_it_inserted(writer: WarehouseWriter) -> None:
    """A rebuild streams its chunks into one long transaction: each chunk's Arrow rows must be
    freed once inserted, or memory grows with the warehouse, not the chunk."""
    held: list[int] = []

    def chunks() -> Iterator[Changes]:
        for i in range(4):
            yield Changes(rows={"customers": [make_facts(f"c{i}-{j}", 7).customer
                                              for j in range(5000)]})
            held.append(pa.total_allocated_bytes())  # chunk i is inserted by now

    writer.replace_derived(chunks(), MODELS)
    assert rows(writer, "SELECT count(*) FROM customers") == [(20_000,)]
    assert held[-1] - held[0] < 100_000, held


def test_events_by_key_hash_returns_one_customers_history_in_order(
    writer: WarehouseWriter,
) -> None:
    batch = [(make_event(i, "a" if i % 3 else "b", timestamp=T0 - timedelta(seconds=i)), 0, i)
             for i in range(30)]
    writer.commit(batch, Changes(), {0: 30}, None)
    got = writer.events_by_key_hash([key_hash("user_id", "b")])
    assert [e.event_id for e in got] == [e.event_id for e, _, _ in
                                         sorted(batch, key=lambda s: s[0].order_key())
                                         if e.primary_key.value == "b"]
    assert writer.events_by_key_hash([]) == []
    assert len(writer.events_by_key_hash([key_hash("user_id", x) for x in "ab"])) == 30


def test_6_4_history_read_back_leaves_no_parquet_bytes_in_memory(writer: WarehouseWriter) -> None:
    """DuckDB's external file cache would keep every Parquet byte a re-derivation reads back (121
    MiB of the processor's resident set at 9.25M events); the writer keeps none."""
    batch = [(make_event(i, f"u{i % 50}"), 0, i) for i in range(2000)]  # beyond inlining
    writer.commit(batch, Changes(), {0: 2000}, None)
    assert len(writer.events_by_key_hash([key_hash("user_id", "u1")])) == 40
    cached = writer._connection().execute(
        "SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory() "
        "WHERE tag = 'EXTERNAL_FILE_CACHE'").fetchone()
    assert cached == (0,)


def test_6_4_a_sort_beyond_the_limit_spills_into_the_writers_own_directory(
    writer: WarehouseWriter, settings: WarehouseSettings,
) -> None:
    """DuckDB's default spill directory is `.tmp` in the working directory, alike for every
    process; the writer spills under DATA_DIR/spill, in a directory of its own, removed on close
    (and one left by a process that is gone is removed by the next writer)."""
    sort = ("SELECT max(rn) FROM (SELECT row_number() OVER (ORDER BY h) AS rn "
            "FROM (SELECT md5(i::VARCHAR) AS h FROM range(1500000) t(i)))")
    seen: list[object] = []

    def work(con: duckdb.DuckDBPyConnection) -> None:
        seen.append(con.execute(sort).fetchone())
        seen.append(con.execute("SELECT current_setting('temp_directory')").fetchone())

    writer._upkeep(work, "32MB")
    mine = Path(str(seen[1][0]))  # type: ignore[index]
    assert seen[0] == (1_500_000,)
    assert mine.parent == settings.spill_dir and mine.name.startswith(f"{os.getpid()}-")
    gone = settings.spill_dir / "999999999-x"  # no such pid
    gone.mkdir()
    writer.close()
    assert not mine.exists()
    writer.open()
    assert not gone.exists()


def test_scan_reads_the_lake_and_refuses_writes(writer: WarehouseWriter) -> None:
    writer.commit([], changes_for({"a": 1}, {"a"}), {}, None)  # type: ignore[arg-type]
    got = [b.to_pylist() for b in writer.scan("SELECT customer_id FROM customers WHERE "
                                              "customer_id = ?", ["a"])]
    assert got == [[{"customer_id": "a"}]]
    with pytest.raises(CommitError):
        list(writer.scan("DELETE FROM customers"))


def test_a_second_writer_waits_then_gives_up(writer: WarehouseWriter,
                                             settings: WarehouseSettings) -> None:
    with pytest.raises(WarehouseLockedError):
        WarehouseWriter(settings).open()


def test_6_3_maintenance_bounds_files_and_catalog_under_small_commits(tmp_path: Path) -> None:
    settings = WarehouseSettings(data_dir=tmp_path, grace_period_s=0)
    counts: dict[str, int] = {}
    with WarehouseWriter(settings) as writer:
        catalog = writer.root / "catalog.sqlite"
        sizes = []
        for n in range(2):
            for i in range(n * 250, (n + 1) * 250):
                customer = f"c{i % 7}"
                counts[customer] = counts.get(customer, 0) + 1
                small = Changes(rows={"customers": [make_facts(customer, counts[customer])
                                                    .customer]})
                small.delete("customers", "customer_id", frozenset({customer}))
                writer.commit([(make_event(i, customer), 0, i)], small, {0: i + 1}, None)
            writer.maintain()
            files = len(list((writer.root / "data").rglob("*.parquet")))
            sizes.append(catalog.stat().st_size + _wal(catalog))
            assert files <= 40, files  # a few per table, not one per commit
        # The second 250 commits reuse the catalog space the first ones freed.
        assert sizes[1] < 2 * sizes[0] and sizes[1] < 8_000_000, sizes
        assert rows(writer, "SELECT count(*), sum(event_count) FROM customers") == [(7, 500)]
        assert rows(writer, "SELECT count(*) FROM events") == [(500,)]
        # Maintenance itself adds a few snapshots (flush, rewrite, merge); not one per commit.
        # (Read through DuckDB's SQLite, not Python's, while the writer holds the file: sqlitecat.)
        snapshots = sqlitecat.rows(catalog, "SELECT count(*) FROM ducklake_snapshot")
        assert int(snapshots[0][0] or 0) <= 10


def test_6_3_compaction_rewrites_a_table_whose_files_carry_deletes(
    settings: WarehouseSettings,
) -> None:
    """Every commit deletes customers' old rows from earlier files, so their files carry delete
    files (which DuckLake will not merge); compaction rewrites such a table whole, keeps its
    rows, and leaves alone a table under the bound, the NOT_COMPACTED ones and a lake with
    nothing to do."""
    settings = settings.model_copy(update={"inline_row_limit": 0, "compact_files": 3})
    counts: Counter[str] = Counter()
    with WarehouseWriter(settings) as writer:
        for i in range(6):
            touched = {f"c{(i + j) % 9}" for j in range(4)}
            counts.update(touched)
            changes = changes_for(counts, touched)
            changes.delete("customer_state", "customer_id", frozenset(touched))
            changes.add("customer_state", [StateRow(c, 0, b"state") for c in sorted(touched)])
            writer.commit([(make_event(i, "c0"), 0, i)], changes, {0: i + 1}, None)
        before = _files_with_deletes(writer)
        over = sorted(t for t, n in before.items()
                      if n >= 3 and t not in maintain_module.NOT_COMPACTED)
        assert "sessions" in over and before["customer_state"] >= 3, before
        expected = {t: rows(writer, f"SELECT * FROM {t} ORDER BY ALL") for t in over}
        assert writer.compact() == over
        after = _files_with_deletes(writer)
        assert not set(over) & set(after), after
        # Readers follow these two by snapshot id and change feed (maintain.NOT_COMPACTED).
        for table in ("customers", "customer_state"):
            assert before[table] >= 3 and after[table] == before[table], table
        assert {t: rows(writer, f"SELECT * FROM {t} ORDER BY ALL") for t in over} == expected
        assert rows(writer, "SELECT count(*) FROM events") == [(6,)]
        version = writer.state().version
        assert writer.compact() == [] and writer.state().version == version
        query = "SELECT current_setting('threads')"
        assert writer._connection().execute(query).fetchall() == \
            duckdb.connect().execute(query).fetchall()


def test_events_are_merged_into_small_row_groups_also_in_a_lake_made_before(
    settings: WarehouseSettings, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Maintenance's sorted merge of `events` fits its memory limit only with small row groups
    (maintain.EVENTS_LAYOUT): a lake created without that option gets it when a writer opens it,
    and maintenance's merged files have it (DuckDB rounds it up to a multiple of 2,048)."""
    layout = {**maintain_module.EVENTS_LAYOUT, "parquet_row_group_size": ("2048", "2048")}
    monkeypatch.setattr(maintain_module, "SORTED",
                        {**maintain_module.SORTED, "events": ("key_hash", layout)})
    settings = settings.model_copy(update={"inline_row_limit": 0})
    option = ("SELECT option_name, value FROM ducklake_options(?) "
              "WHERE scope_entry = 'main.events' ORDER BY ALL")
    with WarehouseWriter(settings) as writer:
        assert dict(writer._connection().execute(option, [writer_module.LAKE]).fetchall()) == {
            name: shown for name, (_, shown) in layout.items()}
        writer._connection().execute(
            f"CALL {writer_module.LAKE}.set_option('parquet_row_group_size', '122880', "
            "table_name => 'events')")
    with WarehouseWriter(settings) as writer:
        assert dict(writer._connection().execute(option, [writer_module.LAKE]).fetchall()) == {
            name: shown for name, (_, shown) in layout.items()}
        for n in range(3):
            writer.commit([(make_event(i, f"c{i % 50}"), 0, i)
                           for i in range(n * 2000, (n + 1) * 2000)], Changes(),
                          {0: (n + 1) * 2000}, None)
        writer.maintain()
        groups = _row_groups(writer)
        assert sum(groups) == 6000 and max(groups) == 2048, groups
        assert rows(writer, "SELECT count(DISTINCT event_id) FROM events") == [(6000,)]


def test_a_lake_without_the_events_sort_order_gets_it_when_a_writer_opens_it(
    settings: WarehouseSettings,
) -> None:
    """A re-derived customer's history is read back by key_hash from files sorted by it
    (maintain.SORTED): a lake that lacks the sort order gets it back."""
    meta = f"__ducklake_metadata_{writer_module.LAKE}"
    sorted_tables = (f"SELECT t.table_name, e.expression FROM {meta}.ducklake_sort_info s "
                     f"JOIN {meta}.ducklake_table t USING (table_id) "
                     f"JOIN {meta}.ducklake_sort_expression e USING (sort_id) "
                     "WHERE s.end_snapshot IS NULL AND t.end_snapshot IS NULL ORDER BY ALL")
    with WarehouseWriter(settings) as writer:
        con = writer._connection()
        assert con.execute(sorted_tables).fetchall() == [("events", "key_hash")]
        con.execute(f"ALTER TABLE {writer_module.LAKE}.events RESET SORTED BY")
        assert con.execute(sorted_tables).fetchall() == []
    with WarehouseWriter(settings) as writer:
        assert writer._connection().execute(sorted_tables).fetchall() == [("events", "key_hash")]


def _row_groups(writer: WarehouseWriter) -> list[int]:
    """The row count of every row group of the live `events` files."""
    con = writer._connection()
    files = [r[0] for r in con.execute(
        f"SELECT data_file FROM ducklake_list_files('{writer_module.LAKE}', 'events')").fetchall()]
    return [int(r[0]) for r in con.execute(
        "SELECT row_group_num_rows FROM (SELECT DISTINCT file_name, row_group_id, "
        "row_group_num_rows FROM parquet_metadata(?))", [files]).fetchall()]


def _files_with_deletes(writer: WarehouseWriter) -> dict[str, int]:
    return maintain_module.files_with_deletes(writer._connection())


def _wal(catalog: Path) -> int:
    wal = catalog.with_name(catalog.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def test_maintenance_beyond_the_memory_limit_is_retryable_and_restores_the_limit(
    writer: WarehouseWriter, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    """Maintenance refused by DuckDB's memory limit must not stop a processor (it crashed one at
    4.5M events): the failure is retryable, and commits go on under the writer's own limit."""
    for i in range(3):
        writer.commit([(make_event(i, "a"), 0, i)],
                      changes_for(Counter({"a": i + 1}), {"a"}), {0: i + 1}, None)
    monkeypatch.setattr(writer_module, "MAINTAIN_MEMORY_LIMITS", ("8MB", "8MB"))
    with pytest.raises(WarehouseMemoryError):
        writer.maintain()
    expected = duckdb.connect()
    expected.execute(f"SET memory_limit = '{writer_module.WRITER_MEMORY_LIMIT}'")
    query = "SELECT current_setting('memory_limit')"
    assert writer._connection().execute(query).fetchall() == expected.execute(query).fetchall()
    expected.close()
    writer.commit([(make_event(3, "a"), 0, 3)], changes_for(Counter({"a": 4}), {"a"}), {0: 4},
                  None)
    # A step refused under the first limits is tried again alone under each larger one, also
    # when DuckDB reports the refusal as a failed DuckLake commit (a rewrite's file statistics).
    monkeypatch.setattr(writer_module, "MAINTAIN_MEMORY_LIMITS", ("8MB", "8MB", "1GB"))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="journey.warehouse"):
        writer.maintain()
    refused = [r.args[0] for r in caplog.records if "maintenance step" in r.getMessage()]
    assert "flush inlined rows" in refused
    assert len(refused) == 2 * len(set(refused))  # each refused step: under 8MB twice, not again


def test_6_5_a_data_directory_moved_elsewhere_opens_where_it_is(
    settings: WarehouseSettings, tmp_path: Path,
) -> None:
    """A backup restored to another path: the catalog still names the old data path."""
    import shutil

    before = settings.model_copy(update={"data_dir": tmp_path / "before"})
    events = [(make_event(i, "alice"), 0, i) for i in range(3)]
    with WarehouseWriter(before) as w:
        w.commit(events, changes_for({"alice": 3}, {"alice"}), {0: 3},  # type: ignore[arg-type]
                 events[-1][0].timestamp, MODELS)
        w.maintain()  # the events in Parquet files, not inlined in the catalog
    shutil.move(tmp_path / "before", tmp_path / "after")
    after = settings.model_copy(update={"data_dir": tmp_path / "after"})
    with WarehouseWriter(after) as w:
        more = [(make_event(i, "alice"), 0, i) for i in range(3, 5)]
        w.commit(more, changes_for({"alice": 5}, {"alice"}), {0: 5},  # type: ignore[arg-type]
                 more[-1][0].timestamp)
        assert rows(w, "SELECT count(*) FROM events") == [(5,)]
        assert rows(w, "SELECT customer_id, event_count FROM customers") == [("alice", 5)]

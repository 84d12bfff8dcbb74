"""The writer: commits, bucket rewrites, round trip of events, locking, grace period, compaction."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, timedelta, timezone
from pathlib import Path

import duckdb
import pytest
from warehouse_workload import T0, make_event, make_facts, snapshot_figures

from journey.schema import IdentityKey
from warehouse.errors import CommitError, WarehouseLockedError
from warehouse.reader import Snapshot, register_views
from warehouse.settings import WarehouseSettings
from warehouse.tables import ModelRow, bucket_of
from warehouse.writer import WarehouseWriter


def _query(writer: WarehouseWriter, sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect()
    try:
        register_views(con, Snapshot(writer.root, writer.state()))
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _same_bucket_customers(buckets: int) -> tuple[str, str, str]:
    by_bucket: dict[int, list[str]] = {}
    for i in range(1000):
        by_bucket.setdefault(bucket_of(f"c{i}", buckets), []).append(f"c{i}")
    pair = next(names for names in by_bucket.values() if len(names) >= 2)
    other = next(names[0] for b, names in by_bucket.items() if b != bucket_of(pair[0], buckets))
    return pair[0], pair[1], other


def test_bucket_of_is_the_first_8_hex_of_sha256_modulo_buckets() -> None:
    # sha256("alice") starts 2bd806c9 = 735577801
    assert bucket_of("alice", 64) == 735577801 % 64
    assert all(0 <= bucket_of(f"c{i}", 7) < 7 for i in range(100))


def test_commit_is_visible_after_reopen_with_offsets_and_watermark(
    settings: WarehouseSettings,
) -> None:
    with WarehouseWriter(settings) as writer:
        events = [(make_event(i, "c1"), 2, 100 + i) for i in range(3)]
        first = writer.commit(events, {}, {2: 103}, events[-1][0].timestamp, None)
        second = writer.commit([], {}, {5: 7}, T0 - timedelta(days=1), None)
    assert (first.version, second.version) == (1, 2)
    with WarehouseWriter(settings) as reopened:
        state = reopened.state()
    assert state.offsets == {2: 103, 5: 7}
    assert state.watermark == T0 + timedelta(seconds=2)  # the watermark never goes back
    assert state.rows("events") == 3


def test_6_3_events_round_trip_to_equal_canonical_events(writer: WarehouseWriter) -> None:
    paris = timezone(timedelta(hours=2))
    originals = [
        make_event(0, "c1"),
        make_event(1, "ünïcødé ✓", type="alias", event="Aliased", previous_id="anon-9",
                   timestamp=T0.astimezone(paris), timestamp_flagged=True,
                   keys=(IdentityKey(type="loyalty_card", value="L-1"),
                         IdentityKey(type="email", value="a@b.c"))),
        make_event(2, "c3", channel="email", properties={"big": 2**70, "n": None, "l": [1, "x"]},
                   traits={"name": "Zoë"}, context={"page": {"url": "https://x/?utm_source=g"}},
                   campaign_source="g", campaign_medium="cpc", campaign_name="spring",
                   page_url="https://x/?utm_source=g", source="g", medium="cpc"),
    ]
    writer.commit([(e, 1, 10 + i) for i, e in enumerate(originals)], {}, {1: 13}, None, None)
    stored = [item for chunk in writer.iter_events(2) for item in chunk]
    assert stored == [(e, 1, 10 + i) for i, e in enumerate(originals)]
    assert stored[1][0].primary_key == IdentityKey(type="email", value="a@b.c")
    sql = 'SELECT key_type, key_value, typeof(timestamp) FROM events ORDER BY "offset"'
    rows = _query(writer, sql)
    assert rows[1] == ("email", "a@b.c", "TIMESTAMP WITH TIME ZONE")


def test_iter_events_ordered_sorts_by_time_then_event_id(writer: WarehouseWriter) -> None:
    late, early = make_event(5, "c1"), make_event(1, "c2")
    tie = make_event(9, "c3", timestamp=early.timestamp)
    writer.commit([(late, 0, 0)], {}, {0: 1}, None, None)
    writer.commit([(tie, 0, 1), (early, 0, 2)], {}, {0: 3}, None, None)
    ordered = [e.event_id for chunk in writer.iter_events(2, ordered=True) for e, _, _ in chunk]
    assert ordered == [early.event_id, tie.event_id, late.event_id]


def test_bucket_rewrite_replaces_rows_and_drops_merged_away_customers(
    writer: WarehouseWriter,
) -> None:
    a, b, other = _same_bucket_customers(writer.settings.buckets)
    bucket, other_bucket = bucket_of(a, 8), bucket_of(other, 8)
    writer.commit([], {bucket: [make_facts(a, 2), make_facts(b, 3)],
                       other_bucket: [make_facts(other, 1)]}, {}, None, None)
    untouched = {f.path for f in writer.state().files("customers") if f.bucket == other_bucket}
    # b merged into a: the caller passes the complete bucket, now a alone with 5 events.
    writer.commit([], {bucket: [make_facts(a, 5)]}, {}, None, None)
    customers = _query(writer, "SELECT customer_id, event_count FROM customers ORDER BY 1")
    assert customers == sorted([(a, 5), (other, 1)])
    assert _query(writer, f"SELECT count(*) FROM stage_entries WHERE customer_id = '{b}'") == [(0,)]
    assert {f.path for f in writer.state().files("customers") if f.bucket == other_bucket} == (
        untouched
    )


def test_a_bucket_left_without_customers_has_no_files(writer: WarehouseWriter) -> None:
    a, _, _ = _same_bucket_customers(8)
    writer.commit([], {bucket_of(a, 8): [make_facts(a, 1)]}, {}, None, None)
    state = writer.commit([], {bucket_of(a, 8): []}, {}, None, None)
    assert all(not state.files(t) for t in ("customers", "sessions", "identities"))
    assert snapshot_figures(Snapshot(writer.root, state))[1:] == (0, 0, 0)


def test_tables_without_rows_get_no_file(writer: WarehouseWriter) -> None:
    state = writer.commit([], {bucket_of("c1", 8): [make_facts("c1", 2)]}, {}, None, None)
    assert state.files("surveys") == () and len(state.files("customers")) == 1
    assert (writer.root / state.files("customers")[0].path).stat().st_mode & 0o777 == 0o444


def test_commit_refuses_a_customer_in_the_wrong_bucket(writer: WarehouseWriter) -> None:
    wrong = (bucket_of("c1", 8) + 1) % 8
    with pytest.raises(CommitError) as info:
        writer.commit([], {wrong: [make_facts("c1", 1)]}, {}, None, None)
    assert info.value.context["customer_id"] == "c1"
    assert writer.state().version == 0


def test_commit_refuses_offsets_that_go_back(writer: WarehouseWriter) -> None:
    writer.commit([], {}, {0: 10}, None, None)
    with pytest.raises(CommitError):
        writer.commit([], {}, {0: 9}, None, None)


def test_models_table_is_written_whole_kept_when_none_and_cleared_when_empty(
    writer: WarehouseWriter,
) -> None:
    rows = [ModelRow("default", "awareness", 0, False, 7776000.0),
            ModelRow("default", "decision", 2, True, 7776000.0)]
    writer.commit([], {}, {}, None, rows)
    writer.commit([], {}, {}, None, None)
    stored = _query(writer, "SELECT stage, conversion_stage FROM models ORDER BY stage_index")
    assert stored == [("awareness", False), ("decision", True)]
    writer.commit([], {}, {}, None, [])
    assert _query(writer, "SELECT count(*) FROM models") == [(0,)]


def test_replace_all_rewrites_every_bucket_and_keeps_events(writer: WarehouseWriter) -> None:
    writer.commit([(make_event(0, "c1"), 0, 0)], {bucket_of("c1", 8): [make_facts("c1", 1)],
                                                  bucket_of("c2", 8): [make_facts("c2", 1)]},
                  {0: 1}, None, None)
    state = writer.replace_all({bucket_of("c3", 8): [make_facts("c3", 4)]})
    assert _query(writer, "SELECT customer_id FROM customers") == [("c3",)]
    assert state.rows("events") == 1 and state.offsets == {0: 1}


def test_second_writer_is_refused_until_the_first_closes(settings: WarehouseSettings) -> None:
    with WarehouseWriter(settings):
        with pytest.raises(WarehouseLockedError) as info:
            WarehouseWriter(settings).open()
        assert info.value.retryable
    with WarehouseWriter(settings) as second:
        assert second.state().version == 0


def test_unreferenced_files_are_deleted_only_after_the_grace_period(tmp_path: Path) -> None:
    now = [1000.0]
    settings = WarehouseSettings(data_dir=tmp_path, buckets=8, grace_period_s=60)
    with WarehouseWriter(settings, clock=lambda: now[0]) as writer:
        bucket = bucket_of("c1", 8)
        writer.commit([], {bucket: [make_facts("c1", 1)]}, {}, None, None)
        old_path = writer.state().files("customers")[0].path
        old = writer.root / old_path
        writer.commit([], {bucket: [make_facts("c1", 2)]}, {}, None, None)
        now[0] += 59.0
        writer.commit([], {}, {}, None, None)
        assert old.exists()  # a reader of version 1 may still be reading it
        assert old_path in {r.path for r in writer.state().retired}
        now[0] += 1.0
        writer.commit([], {}, {}, None, None)
        assert not old.exists()
        assert old_path not in {r.path for r in writer.state().retired}


def test_orphans_of_an_interrupted_commit_are_removed_on_open(settings: WarehouseSettings) -> None:
    with WarehouseWriter(settings) as writer:
        writer.commit([(make_event(0, "c1"), 0, 0)], {}, {0: 1}, None, None)
        kept = writer.root / writer.state().files("events")[0].path
    orphan = kept.with_name("v000000002-deadbeef.parquet")
    orphan.write_bytes(b"half a file")
    (kept.parent.parent / ".manifest.json.x.tmp").write_bytes(b"{")
    with WarehouseWriter(settings) as writer:
        assert kept.exists() and not orphan.exists()
        assert not list(writer.root.glob(".*.tmp"))


def test_compaction_keeps_every_event_exactly_once(tmp_path: Path) -> None:
    settings = WarehouseSettings(data_dir=tmp_path, buckets=8, compact_max_files=3)
    with WarehouseWriter(settings) as writer:
        for n in range(5):
            batch = [(make_event(i, f"c{i % 4}"), 0, i) for i in range(n * 10, n * 10 + 10)][::-1]
            writer.commit(batch, {}, {0: n * 10 + 10}, None, None)
        state = writer.state()
        assert len(state.files("events")) <= 3
        ids = [e.event_id for chunk in writer.iter_events(7) for e, _, _ in chunk]
        assert Counter(ids) == Counter(f"e{i:07d}" for i in range(50))
        merged = max(state.files("events"), key=lambda f: f.rows)
        # epoch_us: DuckDB needs pytz to return TIMESTAMPTZ values to Python.
        path = writer.root / merged.path
        times = _query(writer, f"SELECT epoch_us(timestamp) FROM read_parquet('{path}')")
        assert times == sorted(times) and len(times) == merged.rows > 10
        assert _query(writer, "SELECT count(*), count(DISTINCT event_id) FROM events") == [(50, 50)]


def test_commit_timestamps_are_utc(writer: WarehouseWriter) -> None:
    state = writer.commit([], {}, {}, None, None)
    assert state.committed_at is not None and state.committed_at.tzinfo == UTC


def test_a_changed_bucket_count_needs_a_rebuild(tmp_path: Path) -> None:
    with WarehouseWriter(WarehouseSettings(data_dir=tmp_path, buckets=8)) as writer:
        writer.commit([], {bucket_of("c1", 8): [make_facts("c1", 1)]}, {}, None, None)
    with WarehouseWriter(WarehouseSettings(data_dir=tmp_path, buckets=4)) as writer:
        with pytest.raises(CommitError) as info:
            writer.commit([], {bucket_of("c1", 4): [make_facts("c1", 2)]}, {}, None, None)
        assert info.value.context == {"stored": 8, "configured": 4}
        state = writer.replace_all({bucket_of("c1", 4): [make_facts("c1", 2)]})
        assert state.buckets == 4 and [f.bucket for f in state.files("customers")] == [
            bucket_of("c1", 4)
        ]
        writer.commit([], {}, {0: 1}, None, None)

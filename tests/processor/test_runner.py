"""The consume loop on the real embedded log and a real warehouse: dead letters, dedup, offsets."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from ingest.deadletter import list_dead_letters
from ingest.normalize import normalize
from journey.log.factory import open_producer
from processor.app import build
from processor.settings import ProcessorSettings
from warehouse.reader import WarehouseReader

RECEIVED = datetime(2026, 2, 1, tzinfo=UTC)


def _event(i: int, user: str = "u1") -> bytes:
    message = {"type": "track", "event": "Product Viewed", "userId": user, "messageId": f"m{i}",
               "timestamp": f"2026-01-01T10:{i:02d}:00Z"}
    return normalize(message, RECEIVED).to_json()


def test_undecodable_record_is_dead_lettered_and_duplicates_are_stored_once(
    tmp_path: Path,
) -> None:
    settings = ProcessorSettings(data_dir=tmp_path, partitions=2)
    producer = open_producer(settings)
    producer.append([(b"u1", _event(1)), (b"u1", b"{not an event"), (b"u1", _event(2))])
    producer.append([(b"u1", _event(1)), (b"u1", _event(3))])  # m1 again: a client retry
    processor, writer = build(settings, threading.Event())
    try:
        stats = processor.run_once()
        while stats.records:
            stats = processor.run_once()
        offsets = writer.state().offsets
    finally:
        writer.close()
        producer.close()

    letters = list_dead_letters(tmp_path / "deadletter", limit=10)
    assert [(d.stage, d.offset) for d in letters] == [("processor", 1)]
    reader = WarehouseReader(settings.warehouse_dir)
    snap = reader.current()
    assert snap is not None
    con = duckdb.connect()
    reader.register_views(con, snap)
    ids = [r[0] for r in con.execute("SELECT event_id FROM events ORDER BY 1").fetchall()]
    assert ids == ["m1", "m2", "m3"]
    assert sum(offsets.values()) == 5
    assert con.execute("SELECT event_count FROM customers").fetchall() == [(3,)]

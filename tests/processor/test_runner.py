"""The consume loop on the real embedded log and a real warehouse: dead letters, dedup, offsets."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from ingest.normalize import normalize
from journey.deadletter import list_dead_letters
from journey.log.base import LogConsumer, Record
from journey.log.errors import LogUnavailable
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


class _FailsOnSecondPoll:
    """The embedded log, except that its second poll fails as an unreachable broker would."""

    def __init__(self, inner: LogConsumer) -> None:
        self.inner = inner
        self.polls = 0

    def partitions(self) -> list[int]:
        return self.inner.partitions()

    def seek(self, positions: dict[int, int]) -> None:
        self.inner.seek(positions)

    def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        self.polls += 1
        if self.polls == 2:
            raise LogUnavailable("broker gone", bootstrap="test")
        return self.inner.poll(max_records, timeout_s)

    def end_offsets(self) -> dict[int, int]:
        return self.inner.end_offsets()

    def close(self) -> None:
        self.inner.close()


def test_a_log_failure_while_topping_a_batch_up_keeps_what_was_polled(tmp_path: Path) -> None:
    settings = ProcessorSettings(data_dir=tmp_path, partitions=1, batch_max_records=100)
    producer = open_producer(settings)
    producer.append([(b"u1", _event(i)) for i in range(1, 6)])
    processor, writer = build(settings, threading.Event())
    try:
        processor._consumer = _FailsOnSecondPoll(processor._consumer)
        stats = processor.run_once()  # the top-up poll fails: the 5 polled records still land
        stored = sum(int(b.column(0)[0].as_py())
                     for b in writer.scan("SELECT count(*) FROM events"))
        offsets = writer.state().offsets
    finally:
        processor.close()
        writer.close()
        producer.close()
    assert (stats.records, stats.new_events, stored, offsets) == (5, 5, 5, {0: 5})

"""The consume loop on the real embedded log and a real warehouse: dead letters, dedup, offsets."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ingest.normalize import normalize
from journey.deadletter import list_dead_letters
from journey.log.base import LogConsumer, Record
from journey.log.errors import LogUnavailable
from journey.log.factory import open_producer
from processor import runner
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


def test_6_3_a_maintenance_round_runs_step_by_step_between_commits_and_while_idle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A whole round at once stopped commits for 6-25 s in a 30-minute trickle: the steps are
    # spread over the next commits (and idle polls), each call bounded by MAINTAIN_BUDGET_S.
    monkeypatch.setattr(runner, "MAINTAIN_BUDGET_S", 0.0)  # one step a call
    settings = ProcessorSettings(data_dir=tmp_path, partitions=1, batch_max_records=1,
                                 maintain_every=2)
    producer = open_producer(settings)
    producer.append([(b"u1", _event(i)) for i in range(1, 5)])
    processor, writer = build(settings, threading.Event())
    ran: list[str] = []
    step = writer._maintain_step

    def recorded(name: str, work: Any) -> None:
        ran.append(name)
        step(name, work)

    monkeypatch.setattr(writer, "_maintain_step", recorded)
    try:
        expected = [name for name, _ in writer.maintenance_steps()]
        committed = [processor.run_once().new_events for _ in range(4)]
        # Commit 2 began the round (one step); 3 and 4 ran one more each (4 began none: the
        # round was under way), and every record was committed meanwhile.
        assert committed == [1, 1, 1, 1]
        assert ran == expected[:3]
        for _ in range(len(expected) - 3):  # idle polls: one step each
            assert processor.run_once().records == 0
        assert ran == expected  # each step once, in order
        processor.run_once()
        assert ran == expected  # the round is over: an idle poll maintains nothing more
        stored = sum(int(b.column(0)[0].as_py())
                     for b in writer.scan("SELECT count(*) FROM events"))
        assert stored == 4
    finally:
        processor.close()
        writer.close()
        producer.close()

"""SPEC 1.3 dead-letter store: rejected events kept, listable newest first, never the write key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from journey.deadletter import DeadLetter, DeadLetterStore, list_dead_letters

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def letter(minute: int, index: int = 0) -> DeadLetter:
    return DeadLetter(received_at=T0 + timedelta(minutes=minute), write_key="wk_abc",
                      reason=f"reason {minute}", index=index, event={"n": minute})


def test_1_3_dead_letters_are_listed_newest_first_across_stages(tmp_path: Path) -> None:
    collector = DeadLetterStore(tmp_path / "deadletter")
    processor = DeadLetterStore(tmp_path / "deadletter", stage="processor")
    collector.append([letter(1), letter(3, index=4)])
    processor.append([letter(2).model_copy(update={"stage": "processor"})])
    collector.append([letter(5)])
    listed = list_dead_letters(tmp_path / "deadletter", limit=3)
    assert [(d.reason, d.stage) for d in listed] == [
        ("reason 5", "collector"), ("reason 3", "collector"), ("reason 2", "processor")]
    assert listed[1].index == 4 and listed[1].event == {"n": 3}


def test_1_3_a_line_cut_by_a_crash_is_skipped(tmp_path: Path) -> None:
    store = DeadLetterStore(tmp_path)
    store.append([letter(1)])
    with store.path.open("ab") as file:
        file.write(b'{"received_at": "2024-05-01T00:09:00Z", "wri')
    assert [d.reason for d in list_dead_letters(tmp_path, 10)] == ["reason 1"]


def test_1_3_no_store_yet_lists_nothing(tmp_path: Path) -> None:
    assert list_dead_letters(tmp_path / "missing", 10) == []
    DeadLetterStore(tmp_path).append([])
    assert not (tmp_path / "collector.jsonl").exists()


def test_1_3_processor_dead_letters_are_listed_with_the_collectors(tmp_path: Path) -> None:
    DeadLetterStore(tmp_path).append([letter(1)])
    value = orjson.dumps({"event_id": "e-7", "received_at": "2024-05-01T00:02:00Z"}).decode()
    line = {"partition": 3, "offset": 41, "reason": "stage rule failed", "value": value}
    (tmp_path / "processor.jsonl").write_bytes(orjson.dumps(line) + b"\n")
    first, second = list_dead_letters(tmp_path, 10)
    assert (first.stage, first.partition, first.offset) == ("processor", 3, 41)
    assert first.event["event_id"] == "e-7" and first.received_at == T0 + timedelta(minutes=2)
    assert second.reason == "reason 1"

"""The durable copy of the erasure records (warehouse/erasure_record.py, SPEC 2.4 and 6.5)."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

from warehouse import erasure_record

AT = datetime(2026, 3, 2, 9, tzinfo=UTC)


def test_2_4_records_are_hashes_and_times_only_owner_only_latest_time_wins(tmp_path: Path) -> None:
    erasure_record.append(tmp_path, [11, -22], AT)
    erasure_record.append(tmp_path, [11], AT + timedelta(days=1))
    path = erasure_record.path_of(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert erasure_record.read(tmp_path) == {11: AT + timedelta(days=1), -22: AT}
    assert set(path.read_text().split('"')) >= {"key_hash", "erased_at"}


def test_6_5_a_line_cut_by_a_crash_is_skipped_and_the_rest_read(tmp_path: Path) -> None:
    erasure_record.append(tmp_path, [1], AT)
    with erasure_record.path_of(tmp_path).open("ab") as f:
        f.write(b'{"key_hash": 2, "erased_at": "2026-')
    assert erasure_record.read(tmp_path) == {1: AT}
    assert erasure_record.read(tmp_path / "none") == {}


def test_2_4_union_keeps_the_latest_erasure_of_each_key() -> None:
    later = AT + timedelta(hours=1)
    assert erasure_record.union({1: AT, 2: later}, {1: later}) == {1: later, 2: later}

"""processor/member.py: the record each processor publishes, and how `journey status` shows it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from journey import metrics
from journey.status import Status
from processor import member
from processor.app import build_observed
from processor.member import Identity, Member, PartitionLag
from processor.settings import ProcessorSettings

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def _member(name: str = "a", beat: datetime = NOW, **more: object) -> Member:
    fields: dict[str, object] = dict(
        id=f"{name}-1-20261130T070000Z", host=name, pid=1,
        started_at=NOW - timedelta(hours=1), heartbeat=beat, role="active")
    fields.update(more)
    return Member(**fields)  # type: ignore[arg-type]


def test_the_member_id_is_readable_unique_per_start_and_safe_as_a_file_name() -> None:
    at = datetime(2026, 11, 30, 7, 42, 3, tzinfo=UTC)
    me = Identity("web 1/α", 4242, at)
    assert me.id == "web_1_-4242-20261130T074203Z"
    assert Identity("web 1/α", 4242, at + timedelta(seconds=1)).id != me.id
    assert member.this_process() is member.this_process()
    assert member.this_process().pid == os.getpid()


def test_lags_cover_the_owned_partitions_only_and_an_unknown_end_is_unknown() -> None:
    found = member.lags([2, 0], committed={0: 5, 1: 7, 2: 9}, ends={0: 8, 1: 7})
    assert found == {0: PartitionLag(5, 8, 3), 2: PartitionLag(9, None, None)}
    assert member.lags([3], {}, {3: 4}) == {3: PartitionLag(0, 4, 4)}


def test_the_record_round_trips_through_its_file_and_is_removed(tmp_path: Path) -> None:
    record = _member(group="g", partitions={0: PartitionLag(5, 8, 3), 1: PartitionLag(2, 2, 0)},
                     last_commit=NOW - timedelta(seconds=3), customers=12,
                     caught={"events": 4, "customers": 2, "erasures": 0})
    member.publish(tmp_path, record)
    assert member.read_all(tmp_path) == [record]
    assert record.lag == 3
    assert [p.name for p in member.members_dir(tmp_path).iterdir()] == [f"{record.id}.json"]
    member.remove(tmp_path, record.id)
    member.remove(tmp_path, record.id)  # twice is harmless
    assert member.read_all(tmp_path) == []


def test_a_file_that_is_not_a_record_is_skipped(tmp_path: Path) -> None:
    member.publish(tmp_path, _member("a"))
    (member.members_dir(tmp_path) / "junk.json").write_text('{"id": "x"}')
    (member.members_dir(tmp_path) / "half.json").write_text('{"id": ')
    assert [m.host for m in member.read_all(tmp_path)] == ["a"]


def test_a_record_left_long_ago_is_forgotten_by_the_next_publish(tmp_path: Path) -> None:
    member.publish(tmp_path, _member("old"))
    old = member.members_dir(tmp_path) / f"{_member('old').id}.json"
    ages_ago = time.time() - member.FORGET_S - 60
    os.utime(old, (ages_ago, ages_ago))
    member.publish(tmp_path, _member("new", beat=datetime.now(UTC)))
    assert [m.host for m in member.read_all(tmp_path)] == ["new"]


def test_a_member_is_stale_when_its_heartbeat_is_old_or_its_process_is_gone() -> None:
    fresh = _member(beat=NOW - timedelta(seconds=member.STALE_S - 1))
    assert not fresh.stale(NOW)
    assert fresh.stale(NOW, gone=True)
    assert _member(beat=NOW - timedelta(seconds=member.STALE_S + 1)).stale(NOW)


def test_gone_knows_a_dead_process_on_this_host_only() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: its pid names no process now
    host = "this-host"
    dead = _member(host=host, pid=child.pid)
    assert member.gone(dead, host=host)
    assert not member.gone(_member(host=host, pid=os.getpid()), host=host)
    assert not member.gone(_member(host="elsewhere", pid=child.pid), host=host)


def test_status_lists_every_member_and_marks_the_stale_one() -> None:
    live = _member("a", group="g", partitions={0: PartitionLag(5, 8, 3), 2: PartitionLag(1, 1, 0)},
                   last_commit=NOW - timedelta(seconds=4), customers=7)
    dead = _member("b", beat=NOW - timedelta(seconds=30), partitions={1: PartitionLag(0, 2, 2)})
    found = Status(running=True, processors=[(live, False), (dead, True)])
    lines = found.lines(NOW)
    assert "processors: 1 running, 1 stale" in lines
    [a] = [line for line in lines if live.id in line]
    assert "active, group g, partitions 0,2, lag 3" in a and "(4 s ago)" in a
    assert "7 customers" in a and "STALE" not in a
    [b] = [line for line in lines if dead.id in line]
    assert "STALE (no heartbeat for 30 s" in b and "partitions 1, lag 2" in b
    answer = orjson.loads(orjson.dumps(found.as_dict()))
    assert [(p["id"], p["stale"]) for p in answer["processors"]] == [(live.id, False),
                                                                      (dead.id, True)]
    assert answer["processors"][0]["partitions"] == {
        "0": {"committed": 5, "end": 8, "lag": 3}, "2": {"committed": 1, "end": 1, "lag": 0}}
    assert answer["processors"][0]["last_commit"] == (NOW - timedelta(seconds=4)).isoformat()
    # What was there before stays as it was.
    assert lines[0] == "processor: running" and answer["running"] is True


def test_status_without_members_says_none_run() -> None:
    lines = Status(running=False).lines(NOW)
    assert lines[0] == "processor: not running" and lines[-1] == "processors: 0 running"


def test_the_standby_thread_publishes_until_stopped(tmp_path: Path) -> None:
    me = Identity("h", 7, datetime.now(UTC))
    beat = member.Standby(tmp_path, me, "standby", every_s=0.05).start()
    deadline = time.monotonic() + 10
    while not member.read_all(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.01)
    beat.stop()
    [record] = member.read_all(tmp_path)
    assert (record.id, record.role, record.partitions) == (me.id, "standby", {})
    first = record.heartbeat
    assert first >= me.started_at
    time.sleep(0.2)
    assert member.read_all(tmp_path)[0].heartbeat == first, "published after stop()"


def test_a_running_processor_publishes_its_record_and_series_and_removes_them_on_leave(
    tmp_path: Path,
) -> None:
    settings = ProcessorSettings(data_dir=tmp_path, partitions=3)
    processor, writer, hook = build_observed(settings, threading.Event())
    try:
        [record] = member.read_all(tmp_path)  # build_observed refreshes once
        assert record.id == hook.member_id == member.this_process().id
        assert (record.role, record.group, record.customers) == ("active", None, 0)
        assert record.partitions == {p: PartitionLag(0, 0, 0) for p in range(3)}
        assert (datetime.now(UTC) - record.heartbeat).total_seconds() < 60
        text = metrics.read_textfile(tmp_path).decode()
        label = f'processor="{record.id}"'
        assert f"journey_processor_partitions_owned{{{label}}} 3.0" in text
        assert f'journey_processor_lag_records{{partition="2",{label}}} 0.0' in text
    finally:
        processor.close()
        writer.close()
        hook.leave()
    assert member.read_all(tmp_path) == []
    assert metrics.read_textfile(tmp_path) == b""

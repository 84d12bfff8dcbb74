"""Scaling out today: a second processor on the same warehouse stands by and takes over."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from journey.settings import CommonSettings
from tests.e2e.conftest import Proc
from tests.e2e.test_crash import append_all, committed, demo_events, log_end


@pytest.mark.slow
def test_second_processor_stands_by_then_takes_over(
    env: dict[str, str], tmp_path: Path, procs: list[Proc]
) -> None:
    settings = CommonSettings(data_dir=Path(env["JOURNEY_DATA_DIR"]), topic=env["JOURNEY_TOPIC"],
                              partitions=3)
    events = demo_events(customers=30)
    half = len(events) // 2
    append_all(settings, events[:half])
    active = Proc(["processor"], env, tmp_path / "active.log")
    standby = Proc(["processor"], env, tmp_path / "standby.log")
    procs.extend([active, standby])
    active.start()
    deadline = time.monotonic() + 120
    while committed(settings)[1] != log_end(settings) and time.monotonic() < deadline:
        assert active.alive(), active.tail()
        time.sleep(0.1)
    standby.start()
    deadline = time.monotonic() + 60
    while "standing by" not in standby.tail() and time.monotonic() < deadline:
        assert standby.alive(), standby.tail()
        time.sleep(0.1)
    assert "standing by" in standby.tail()
    version = committed(settings)[0]
    time.sleep(1)
    assert committed(settings)[0] == version, "the standby must not write"

    active.kill()
    append_all(settings, events[half:])
    end = log_end(settings)
    deadline = time.monotonic() + 120
    while committed(settings)[1] != end and time.monotonic() < deadline:
        assert standby.alive(), standby.tail()
        time.sleep(0.1)
    assert committed(settings)[1] == end, standby.tail()
    assert "now active" in standby.tail()
    standby.stop()

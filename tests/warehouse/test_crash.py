"""Atomic commits under SIGKILL: a writer killed anywhere leaves the previous or the new commit."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from warehouse_workload import EVENTS_PER_COMMIT, snapshot_figures

from warehouse import sqlitecat
from warehouse.reader import WarehouseReader
from warehouse.settings import WarehouseSettings
from warehouse.writer import WarehouseWriter

WORKLOAD = Path(__file__).with_name("warehouse_workload.py")


def _unreferenced(root: Path) -> set[str]:
    """Parquet files on disk that no data or delete file row of the catalog names."""
    on_disk = {p.name for p in (root / "data").rglob("*.parquet")}
    known = {Path(str(r[0])).name for r in sqlitecat.rows(
        root / "catalog.sqlite",
        "SELECT path FROM ducklake_data_file UNION ALL SELECT path FROM ducklake_delete_file")}
    return on_disk - known


def _kill_during_commits(data_dir: Path, delay_s: float) -> None:
    # Inlining off: every commit writes Parquet files, so a kill can land between files and
    # catalog commit.
    child = subprocess.Popen(
        [sys.executable, str(WORKLOAD), str(data_dir), "0", "0"], stdout=subprocess.PIPE
    )
    assert child.stdout is not None
    with child.stdout:
        assert child.stdout.readline() == b"ready\n"  # the child holds the lock and commits
        time.sleep(delay_s)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL


def test_6_3_sigkill_at_random_points_of_commit_leaves_whole_commits(tmp_path: Path) -> None:
    rng = random.Random(20260301)
    root = tmp_path / "warehouse"
    settings = WarehouseSettings(data_dir=tmp_path, lock_timeout_s=10, grace_period_s=0)
    last_version, interrupted, committed = 0, 0, 0
    for _ in range(6):
        _kill_during_commits(tmp_path, rng.uniform(0.5, 2.0))
        interrupted += bool(_unreferenced(root))
        snap = WarehouseReader(root).current()
        if snap is None:  # killed before its first commit (a loaded machine commits slowly)
            assert last_version == 0
            continue
        assert snap.version >= last_version
        version, events, customer_events, session_events, offset = snapshot_figures(snap)
        # Every table shows one whole commit: no half batch, no facts without their events,
        # and the offset committed with the events that produced it.
        assert events == offset == customer_events == session_events
        assert events % EVENTS_PER_COMMIT == 0 and version == snap.version
        last_version, committed = version, events
        with WarehouseWriter(settings) as writer:
            stored = sum(len(chunk) for chunk in writer.iter_events(500))
            assert stored == writer.state().offsets.get(0, 0) == committed
            writer.maintain(time.time() + 1)
            assert _unreferenced(root) == set()  # files of the killed commit are gone
    assert committed >= 3 * EVENTS_PER_COMMIT, "the child made too little progress"
    assert interrupted >= 1, "no kill landed inside a commit"

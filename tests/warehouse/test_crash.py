"""Atomic commits under SIGKILL: a writer killed anywhere leaves the previous or the new version."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from warehouse_workload import EVENTS_PER_COMMIT, snapshot_figures

from warehouse.manifest import read_manifest
from warehouse.reader import WarehouseReader
from warehouse.settings import WarehouseSettings
from warehouse.tables import TABLES
from warehouse.writer import WarehouseWriter

WORKLOAD = Path(__file__).with_name("warehouse_workload.py")


def _unreferenced(root: Path) -> set[str]:
    manifest = read_manifest(root)
    known = set() if manifest is None else (
        manifest.referenced() | {r.path for r in manifest.retired}
    )
    on_disk = {f"{t}/{p.name}" for t in TABLES if (root / t).is_dir() for p in (root / t).iterdir()}
    return on_disk - known


def _kill_during_commits(data_dir: Path, delay_s: float) -> None:
    child = subprocess.Popen(
        [sys.executable, str(WORKLOAD), str(data_dir), "8", "0"], stdout=subprocess.PIPE
    )
    assert child.stdout is not None
    with child.stdout:
        assert child.stdout.readline() == b"ready\n"  # the child holds the lock and commits
        time.sleep(delay_s)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL


def test_6_3_sigkill_at_random_points_of_commit_leaves_whole_versions(tmp_path: Path) -> None:
    rng = random.Random(20260301)
    root = tmp_path / "warehouse"
    settings = WarehouseSettings(data_dir=tmp_path, buckets=8, lock_timeout_s=10)
    last_version, interrupted = 0, 0
    for _ in range(8):
        _kill_during_commits(tmp_path, rng.uniform(0.1, 0.8))
        interrupted += bool(_unreferenced(root))
        snap = WarehouseReader(root).current()
        if snap is not None:  # None: killed before its first commit was published
            version, events, customer_events, session_events = snapshot_figures(snap)
            # Every table shows one whole commit: no half batch, no facts without their events.
            assert events == snap.manifest.offsets[0] == customer_events == session_events
            assert events % EVENTS_PER_COMMIT == 0 and version >= last_version
            last_version = version
        with WarehouseWriter(settings) as writer:
            assert _unreferenced(root) == set()  # orphans of the killed commit are gone
            stored = sum(len(chunk) for chunk in writer.iter_events(500))
            assert stored == writer.state().offsets.get(0, 0) == writer.state().rows("events")
    assert last_version >= 3, "the child made too little progress to test anything"
    assert interrupted >= 1, "no kill landed inside a commit"

"""The commit lock several processors share (SPEC 6.4), on a SQLite lake (flock) and on a
PostgreSQL catalog (a session advisory lock): one suite, real processes, a real server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.pg import PgCluster
from warehouse.commitlock import CommitLock, FileCommitLock, PgCommitLock, commit_lock
from warehouse.errors import CommitLockStateError, WarehouseLockedError
from warehouse.lake import locate

HOLDER = Path(__file__).with_name("lock_holder.py")
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Lake:
    """A lake's root and catalog URL, and the locks and holder processes a test opened."""

    root: Path
    catalog: str | None
    locks: list[CommitLock]
    children: list[subprocess.Popen[str]]

    def lock(self, timeout_s: float = 5.0) -> CommitLock:
        lock = commit_lock(locate(self.root, self.catalog), self.root, timeout_s)
        self.locks.append(lock)
        return lock

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        child = subprocess.Popen(
            [sys.executable, str(HOLDER), str(self.root), self.catalog or "-", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
        self.children.append(child)
        return child

    def holder(self) -> subprocess.Popen[str]:
        """A child process that holds the lock (returns once it says so)."""
        child = self.spawn("hold")
        assert child.stdout is not None
        assert child.stdout.readline() == "held\n", "the holder never took the lock"
        return child


@pytest.fixture(params=["file", "postgres"])
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Lake]:
    """A fresh lake whose commit lock is a file (SQLite catalog) or advisory (PostgreSQL)."""
    catalog = None
    if request.param == "postgres":
        cluster: PgCluster = request.getfixturevalue("postgres")
        catalog = cluster.catalog_url()
    made = Lake(tmp_path, catalog, [], [])
    try:
        yield made
    finally:
        for child in made.children:
            child.kill()
            child.wait()
            for stream in (child.stdin, child.stdout):
                if stream is not None:
                    stream.close()
        for lock in made.locks:
            lock.close()


def test_commit_lock_picks_the_lake_s_kind(lake: Lake) -> None:
    expected = FileCommitLock if lake.catalog is None else PgCommitLock
    assert isinstance(lake.lock(), expected)


def test_6_4_two_processes_never_hold_the_lock_at_once(lake: Lake) -> None:
    log = lake.root / "turns.log"
    children = [lake.spawn("cycles", "40", str(log)) for _ in range(2)]
    for child in children:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    for child in children:
        assert child.wait(timeout=60) == 0
    lines = log.read_text().splitlines()
    assert len(lines) == 2 * 2 * 40
    # Every "in" is followed by the same process's "out": no turn overlapped another.
    for entered, left in zip(lines[::2], lines[1::2], strict=True):
        pid = entered.split()[0]
        assert (entered, left) == (f"{pid} in", f"{pid} out")
    assert len({line.split()[0] for line in lines}) == 2


def test_6_4_a_held_lock_makes_the_other_process_wait_then_time_out(lake: Lake) -> None:
    child = lake.holder()
    lock = lake.lock()
    started = time.monotonic()
    with pytest.raises(WarehouseLockedError):
        lock.acquire(timeout_s=0.3)
    waited = time.monotonic() - started
    assert 0.25 <= waited < 3, waited
    with pytest.raises(WarehouseLockedError):
        lock.acquire(timeout_s=0)  # a try, no wait
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write("release\n")
    child.stdin.flush()
    assert child.stdout.readline() == "released\n"
    lock.acquire(timeout_s=5)  # now free
    lock.release()


def test_6_4_a_sigkilled_holder_frees_the_lock(lake: Lake) -> None:
    child = lake.holder()
    lock = lake.lock()
    with pytest.raises(WarehouseLockedError):
        lock.acquire(timeout_s=0)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    started = time.monotonic()
    lock.acquire(timeout_s=10)  # the kernel closes the file, the server ends the session
    assert time.monotonic() - started < 5
    lock.release()


def test_one_lock_serves_many_cycles_and_refuses_double_use(lake: Lake) -> None:
    lock, other = lake.lock(), lake.lock(timeout_s=0)
    for _ in range(200):
        with lock, pytest.raises(WarehouseLockedError):
            other.acquire()  # held: another lock object on the same lake waits
        other.acquire()  # released: the other one gets it at once
        other.release()
    lock.acquire()
    with pytest.raises(CommitLockStateError):
        lock.acquire()
    lock.release()
    with pytest.raises(CommitLockStateError):
        lock.release()

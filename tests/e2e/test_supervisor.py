"""`journey up` supervises its processor child: restarts it, and never leaves it orphaned."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import Proc, free_port, wait_http


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_child(parent: int, timeout_s: float = 60) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        kids = _children(parent)
        if kids:
            return kids[0]
        time.sleep(0.1)
    raise AssertionError("no processor child appeared")


@pytest.mark.slow
def test_processor_child_is_restarted_and_dies_with_its_parent(
    env: dict[str, str], tmp_path: Path, procs: list[Proc]
) -> None:
    port = free_port()
    up = Proc(["up", "--port", str(port)], env, tmp_path / "up.log").start()
    procs.append(up)
    wait_http(f"http://127.0.0.1:{port}/healthz", proc=up)
    assert up.popen is not None
    first = _wait_child(up.popen.pid)
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 30
    second = first
    while second == first and time.monotonic() < deadline:
        kids = [k for k in _children(up.popen.pid) if k != first and _alive(k)]
        second = kids[0] if kids else first
        time.sleep(0.1)
    assert second != first, "the supervisor did not restart the processor"

    os.kill(up.popen.pid, signal.SIGKILL)  # the parent only, not its process group
    up.popen.wait()
    deadline = time.monotonic() + 20
    while _alive(second) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(second), "the processor outlived its `journey up`"


def test_a_burst_of_signals_stops_the_processor_instead_of_hanging_it(
    env: dict[str, str], tmp_path: Path, procs: list[Proc]
) -> None:
    """Its handler once set a threading.Event from the signal handler: a second signal arriving
    inside Event.set (a parent's death signal plus a supervisor's SIGTERM) waited for the lock
    the same thread held, for ever (seen as an orphaned processor in the test suite)."""
    metrics = Path(env["JOURNEY_DATA_DIR"]) / "metrics" / "processor.prom"
    for round_ in range(3):
        proc = Proc(["processor"], env, tmp_path / f"processor{round_}.log").start()
        procs.append(proc)
        assert proc.popen is not None
        deadline = time.monotonic() + 60
        while not metrics.exists() and time.monotonic() < deadline and proc.alive():
            time.sleep(0.05)  # written once the processor runs its loop
        assert proc.alive(), proc.tail()
        storm = time.monotonic() + 10  # signals until it exits: some land inside a handler
        while proc.popen.poll() is None and time.monotonic() < storm:
            try:
                os.kill(proc.popen.pid, signal.SIGTERM)
                os.kill(proc.popen.pid, signal.SIGINT)
            except ProcessLookupError:
                break
        try:
            proc.popen.wait(timeout=30)
        except subprocess.TimeoutExpired as error:
            raise AssertionError(f"the processor hung after a burst of SIGTERM:\n{proc.tail()}"
                                 ) from error
        metrics.unlink(missing_ok=True)

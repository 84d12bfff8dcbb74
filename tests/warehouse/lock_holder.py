"""A process that uses a lake's commit lock, for tests/warehouse/test_commitlock.py.

Usage: lock_holder.py ROOT CATALOG hold           (CATALOG "-" for the SQLite default)
       lock_holder.py ROOT CATALOG cycles N LOG
hold: acquire, print "held", wait for a line on stdin, release, print "released".
cycles: print "ready" and wait for a line on stdin (so that two of them start together), then
N times, under the lock, append "<pid> in" and "<pid> out" lines to LOG.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from warehouse.commitlock import commit_lock
from warehouse.lake import locate


def main(argv: list[str]) -> None:
    root, catalog, mode = Path(argv[1]), argv[2], argv[3]
    lock = commit_lock(locate(root, None if catalog == "-" else catalog), root, timeout_s=30)
    try:
        if mode == "hold":
            lock.acquire()
            print("held", flush=True)
            sys.stdin.readline()
            lock.release()
            print("released", flush=True)
        elif mode == "cycles":
            count, log = int(argv[4]), Path(argv[5])
            with lock:  # connected and warm before the start
                pass
            print("ready", flush=True)
            sys.stdin.readline()
            for _ in range(count):
                with lock, log.open("a") as out:
                    out.write(f"{os.getpid()} in\n")
                    out.flush()
                    time.sleep(0.002)  # a window in which the other process would slip in
                    out.write(f"{os.getpid()} out\n")
        else:
            raise SystemExit(f"unknown mode {mode}")
    finally:
        lock.close()


if __name__ == "__main__":
    main(sys.argv)

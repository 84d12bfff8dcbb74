"""Where the API's time from a commit to serving it goes (api/advance.py), statement by statement.

    .venv/bin/python bench/bench_advance.py DATA [--rounds 3]

DATA is a directory that `bench_scale.py --keep ROOT` left (ROOT/<size>-<late>: an embedded log
and the warehouse its processor committed). The store builds the newest snapshot whole, then each
round appends 1,000 new events (fresh event ids) to the log, lets a processor child commit them
and times the store's move to that snapshot. Prints one table row per round and the statements
that took longest. The warehouse and log are changed: run it on a copy.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import api.advance  # noqa: E402
from api.store import SnapshotStore  # noqa: E402
from bench.bench_scale import PARTITIONS, child, load  # noqa: E402
from bench.common import Timed  # noqa: E402
from bench.scale_data import stream  # noqa: E402
from journey.log.embedded import EmbeddedLog  # noqa: E402
from warehouse.reader import WarehouseReader  # noqa: E402

SPENT: dict[str, float] = {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--top", type=int, default=8)
    args = parser.parse_args()
    untimed = api.advance._advance
    api.advance._advance = lambda w, *rest: untimed(Timed(w, SPENT), *rest)  # type: ignore[assignment]
    store = SnapshotStore(WarehouseReader(args.data / "warehouse"), lambda: datetime.now(UTC))
    began = time.perf_counter()
    store.refresh(force=True)
    print(f"full build: {time.perf_counter() - began:.1f} s (load {load()})", file=sys.stderr)
    print("| round | seconds | customers changed (lapsed) | served by | load | all statements "
          "| longest statements |")
    print("|---|---|---|---|---|---|---|")
    for n in range(args.rounds):
        log = EmbeddedLog(args.data / "log", PARTITIONS)
        try:
            tag = f'"event_id":"advance{time.time_ns()}-e'.encode()
            log.append([(k, v.replace(b'"event_id":"e', tag, 1))
                        for k, v in stream(1000, 0.1, seed=1000 + n)])
        finally:
            log.close()
        child(["--child-catch-up", str(args.data)])
        SPENT.clear()
        advances = store.advances
        began = time.perf_counter()
        store.refresh(force=True)
        took = time.perf_counter() - began
        how = "advance" if store.advances > advances else "full build"
        top = sorted(SPENT.items(), key=lambda kv: -kv[1])[:args.top]
        listed = "; ".join(f"{s:.2f} s `{k[:60]}`" for k, s in top)
        statements = f"{len(SPENT)} statements, {sum(SPENT.values()):.2f} s"
        changed = f"{store.last_changed:,} ({store.last_lapsed:,})"
        print(f"| {n} | {took:.2f} | {changed} | {how} | {load()} | {statements} | {listed} |",
              flush=True)


if __name__ == "__main__":
    main()

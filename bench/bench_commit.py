"""Where a processor's small commit goes (a trickle's batches), statement by statement.

    .venv/bin/python bench/bench_commit.py DATA [--rounds 30] [--shift-days 100]

DATA is a directory that `bench_scale.py --keep ROOT` left (ROOT/<size>-<late>: an embedded log
and the warehouse its processor committed). Each round appends 1,000 events of the scale traffic
to the log with fresh event ids, their times moved `--shift-days` later (after the kept history:
its customers come back), then a processor catches up on them in batches of 1,000 records and
every statement of its commits is timed. Prints one table: per batch, the processor's own work,
then each statement kind, longest first. With --catalog, a second table: the catalog queries
DuckLake ran for those statements and their COMMITs (from DuckDB's log of DuckLakeMetadata),
by kind, with the time the catalog took. The warehouse and log are changed: run it on a copy.
"""

from __future__ import annotations

import argparse
import re
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import orjson

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.bench_scale import PARTITIONS, load  # noqa: E402
from bench.common import Timed  # noqa: E402
from bench.scale_data import stream  # noqa: E402
from journey.log.embedded import EmbeddedLog  # noqa: E402
from processor.app import build  # noqa: E402
from processor.settings import ProcessorSettings  # noqa: E402


def append_rounds(data: Path, rounds: int, shift: timedelta) -> None:
    """Append `rounds` x 1,000 events, each round a little later than the one before."""
    log = EmbeddedLog(data / "log", PARTITIONS)
    try:
        for n in range(rounds):
            later = shift + timedelta(minutes=15 * n)
            fresh = []
            for key, value in stream(1000, 0.0, seed=2000 + n):
                event = orjson.loads(value)
                event["event_id"] = f"commit{time.time_ns()}-{event['event_id']}"
                for name in ("timestamp", "received_at"):
                    if event.get(name):
                        event[name] = (datetime.fromisoformat(event[name]) + later).isoformat()
                fresh.append((key, orjson.dumps(event)))
            log.append(fresh)
    finally:
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data", type=Path)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--shift-days", type=float, default=100.0)
    parser.add_argument("--top", type=int, default=16)
    parser.add_argument("--catalog", action="store_true",
                        help="also break the catalog's share down by DuckLake metadata query")
    args = parser.parse_args()
    append_rounds(args.data, args.rounds, timedelta(days=args.shift_days))
    settings = ProcessorSettings(data_dir=args.data, partitions=PARTITIONS,
                                 batch_max_records=1000)
    processor, writer = build(settings, threading.Event())
    spent: dict[str, float] = {}
    real = writer._con  # the writer's own connection: its statements are timed
    assert real is not None
    # Statements read Arrow rows from the caller's local variables; through the proxy that
    # caller is one frame further up.
    real.execute("SET python_scan_all_frames = true")
    writer._con = Timed(real, spent)  # type: ignore[assignment]
    if args.catalog:
        real.execute("CALL enable_logging(['DuckLakeMetadata'], level = 'debug')")
    batches = records = extended = rederived = 0
    work = commit = 0.0
    cpu0 = time.process_time()
    try:
        while (stats := processor.run_once()).records:
            batches += 1
            records += stats.records
            extended += stats.extended
            rederived += stats.rederived
            work += stats.seconds - stats.commit_seconds
            commit += stats.commit_seconds
    finally:
        writer._con = real
        catalog = catalog_queries(real) if args.catalog else {}
        writer.close()
    cpu = time.process_time() - cpu0
    per = max(batches, 1)
    print(f"{batches} batches of {records / per:,.0f} records ({extended:,} "
          f"extensions, {rederived:,} re-derivations), {cpu:.1f} CPU-s, load {load()}",
          file=sys.stderr)
    print("| per batch | ms |")
    print("|---|---|")
    print(f"| processor: decode, dedup, link, derive (run_once minus its commit) "
          f"| {1000 * work / per:.1f} |")
    print(f"| commit, all of it (events and rows to Arrow, statements) | "
          f"{1000 * commit / per:.1f} |")
    for key, seconds in sorted(spent.items(), key=lambda kv: -kv[1])[:args.top]:
        print(f"| `{key[:90]}` | {1000 * seconds / per:.1f} |")
    if catalog:
        print("\n| catalog queries per batch (DuckLake's metadata) | times | ms |")
        print("|---|---|---|")
        print(f"| all of them | {sum(n for n, _ in catalog.values()) / per:.1f} | "
              f"{sum(ms for _, ms in catalog.values()) / per:.1f} |")
        for key, (n, ms) in sorted(catalog.items(), key=lambda kv: -kv[1][1])[:args.top]:
            print(f"| `{key[:90]}` | {n / per:.1f} | {ms / per:.1f} |")


def catalog_queries(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, float]]:
    """DuckDB's log of DuckLake's catalog queries, by kind (numbers folded): (count, ms). A
    COMMIT's catalog writes are one logged query (every INSERT and UPDATE of the commit)."""
    out: dict[str, tuple[int, float]] = {}
    rows = con.execute(
        "SELECT message FROM duckdb_logs WHERE type = 'DuckLakeMetadata'").fetchall()
    for (message,) in rows:
        found = re.search(r"'query': '(.*)', 'elapsed_ms': (\d+)\}$", message, re.S)
        if found is None:
            continue
        key = re.sub(r"\d+", "N", re.sub(r"(\\n|\s)+", " ", found.group(1))).strip()[:100]
        n, ms = out.get(key, (0, 0.0))
        out[key] = (n + 1, ms + float(found.group(2)))
    return out


if __name__ == "__main__":
    main()

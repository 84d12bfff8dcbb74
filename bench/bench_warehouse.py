"""Warehouse benchmark on the DuckLake: commit time, iter_events rate, funnel query latency at
~1M customers.

Run from the repository root: `.venv/bin/python bench/bench_warehouse.py [--customers 1000000]`
(`--customers 1000 --commits 2 --per-commit 500` is a smoke run of a few seconds).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb

from journey.facts import Changes, CustomerFacts, CustomerRow, SessionRow, StageEntryRow
from journey.schema import Event, IdentityKey
from warehouse.lake import LAKE, attach_sql, connect, ident, locate
from warehouse.reader import Snapshot, WarehouseReader, register_views
from warehouse.settings import WarehouseSettings
from warehouse.tables import DERIVED_ROWS
from warehouse.writer import WarehouseWriter

T0 = datetime(2026, 1, 1, tzinfo=UTC)
STAGES = ("awareness", "consideration", "decision", "retention", "advocacy")
FUNNEL_SQL = """
SELECT s.stage_index, s.stage, count(*) AS customers,
       median(epoch(s.entered_at) - epoch(c.first_seen)) AS median_time_to_stage_s
FROM stage_entries s JOIN customers c USING (customer_id)
WHERE s.model = 'default' AND c.first_seen >= TIMESTAMPTZ '2026-01-01'
GROUP BY 1, 2 ORDER BY 1
"""


def _event(i: int, customer: str) -> Event:
    ts = T0 + timedelta(seconds=i)
    return Event(event_id=f"e{i:09d}", type="track", event="Product Viewed", channel="web",
                 timestamp=ts, received_at=ts, keys=(IdentityKey(type="user_id", value=customer),),
                 properties={"i": i, "sku": f"sku-{i % 97}"}, context={"ip": "10.0.0.1"},
                 source="(direct)", medium="(none)", page_url=f"https://shop/p/{i % 97}")


def _facts(customer: str, events: int) -> CustomerFacts:
    last = T0 + timedelta(seconds=events)
    return CustomerFacts(
        customer=CustomerRow(customer, customer, T0, last, events, "web", "(direct)", "(none)",
                             {"plan": "pro"}),
        sessions=[SessionRow(f"s-{customer}", customer, "web", T0, last, float(events), events,
                             events, "https://shop/", "(direct)", "(none)", None, ())],
        stage_entries=[StageEntryRow(customer, "default", s, k, T0, k > 0, "e0")
                       for k, s in enumerate(STAGES[:3])],
    )


def bench_commits(data_dir: Path, commits: int, per_commit: int, customers: int) -> list[float]:
    """Seconds per commit of per_commit events whose customers' rows are replaced (the deletes
    and inserts of the processor's commit)."""
    names = [f"cust-{k}" for k in range(customers)]
    seconds = []
    with WarehouseWriter(WarehouseSettings(data_dir=data_dir)) as writer:
        for c in range(commits):
            start = c * per_commit
            batch = [(_event(i, names[i % customers]), 0, i)
                     for i in range(start, start + per_commit)]
            touched = sorted({names[i % customers] for i in range(start, start + per_commit)})
            counts = (c + 1) * per_commit // customers
            changes = Changes()
            for table in DERIVED_ROWS:
                changes.delete(table, "customer_id", frozenset(touched))
            for name in touched:
                changes.add_facts(_facts(name, counts))
            began = time.perf_counter()
            writer.commit(batch, changes, {0: start + per_commit}, batch[-1][0].timestamp, None)
            seconds.append(time.perf_counter() - began)
    return seconds


def bench_iter_events(data_dir: Path) -> tuple[int, float]:
    """(events, seconds) to read every stored event back as canonical events."""
    with WarehouseWriter(WarehouseSettings(data_dir=data_dir)) as writer:
        began = time.perf_counter()
        count = sum(len(chunk) for chunk in writer.iter_events(50_000))
        return count, time.perf_counter() - began


def publish_lake(data_dir: Path, sources: Mapping[str, str],
                 watermark: datetime | None = None) -> Snapshot:
    """A committed lake under data_dir/warehouse whose tables hold the rows of one SELECT each
    (columns matched by name, missing ones NULL), inserted in one transaction: bench data far
    bigger than the processor's row objects could carry in time."""
    settings = WarehouseSettings(data_dir=data_dir)
    with WarehouseWriter(settings) as writer:  # creates the catalog and every table
        writer.commit([], Changes(), {}, watermark)
    con = connect()
    try:
        con.execute(attach_sql(locate(settings.warehouse_dir), read_only=False))
        con.execute("BEGIN TRANSACTION")
        for table, select in sources.items():
            con.execute(f"INSERT INTO {LAKE}.{ident(table)} BY NAME {select}")
        con.execute(f"UPDATE {LAKE}.journey_meta SET committed_at = now()")
        con.execute("COMMIT")
    finally:
        con.close()
    snap = WarehouseReader(settings.warehouse_dir).current()
    assert snap is not None
    return snap


def build_funnel_snapshot(data_dir: Path, customers: int) -> Snapshot:
    """A lake with `customers` customers and their stage entries, generated by DuckDB."""
    stages = "(VALUES (0, 'awareness'), (1, 'consideration'), (2, 'decision'), (3, 'retention'))"
    customers_sql = f"""SELECT 'cust-' || i AS customer_id, 'cust-' || i AS user_id,
        TIMESTAMPTZ '2026-01-01' + to_seconds(i % 5000000) AS first_seen,
        TIMESTAMPTZ '2026-01-01' + to_seconds(i % 5000000) AS last_seen,
        3::BIGINT AS event_count, 'web' AS first_channel, '(direct)' AS first_source,
        '(none)' AS first_medium, '{{}}' AS traits FROM range({customers}) t(i)"""
    entries_sql = f"""SELECT customer_id, 'default' AS model, s.stage, s.k::BIGINT AS stage_index,
        first_seen + to_seconds(s.k * (hash(customer_id) % 86400)) AS entered_at,
        false AS inferred, 'e0' AS event_id
        FROM ({customers_sql}) c, {stages} s(k, stage)
        WHERE hash(customer_id || s.stage) % 10 < 10 - 3 * s.k"""
    return publish_lake(data_dir, {"customers": customers_sql, "stage_entries": entries_sql})


def bench_funnel(snap: Snapshot, runs: int) -> tuple[int, list[float]]:
    """(stage_entries rows, seconds per run) of the funnel aggregate in a fresh connection."""
    con = duckdb.connect()
    register_views(con, snap)
    seconds = []
    for _ in range(runs):
        began = time.perf_counter()
        con.execute(FUNNEL_SQL).fetchall()
        seconds.append(time.perf_counter() - began)
    row = con.execute("SELECT count(*) FROM stage_entries").fetchone()
    con.close()
    return (int(row[0]) if row else 0), seconds


def main() -> None:
    """Run the three measurements and print a table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--commits", type=int, default=5)
    parser.add_argument("--per-commit", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        commit_s = bench_commits(data_dir, args.commits, args.per_commit, 5_000)
        events, iter_s = bench_iter_events(data_dir)
        snap = build_funnel_snapshot(data_dir / "funnel", args.customers)
        rows, funnel_s = bench_funnel(snap, 5)
    what = f"commit: {args.per_commit} events, their customers' rows replaced, median"
    print(f"{'measure':<52} {'value':>14}")
    print(f"{what:<52} "
          f"{statistics.median(commit_s) * 1000:>11.0f} ms")
    print(f"{'commit: max of ' + str(len(commit_s)):<52} {max(commit_s) * 1000:>11.0f} ms")
    print(f"{'iter_events: ' + str(events) + ' events':<52} {events / iter_s:>9.0f} ev/s")
    print(f"{'funnel over ' + str(args.customers) + ' customers, ' + str(rows) + ' entries':<52} "
          f"{statistics.median(funnel_s) * 1000:>11.0f} ms")


if __name__ == "__main__":
    main()

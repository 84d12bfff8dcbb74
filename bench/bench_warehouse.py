"""Warehouse benchmark: commit time, iter_events rate, funnel query latency at ~1M customers.

Run from the repository root: `.venv/bin/python bench/bench_warehouse.py [--customers 1000000]`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb

from journey.schema import Event, IdentityKey
from journey.facts import CustomerFacts, CustomerRow, SessionRow, StageEntryRow
from warehouse.manifest import DataFile, Manifest
from warehouse.reader import Snapshot, register_views
from warehouse.settings import WarehouseSettings
from warehouse.tables import bucket_of
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
    """Seconds per commit of per_commit events touching every one of 64 buckets."""
    settings = WarehouseSettings(data_dir=data_dir, buckets=64)
    names = [f"cust-{k}" for k in range(customers)]
    by_bucket: dict[int, list[str]] = {}
    for name in names:
        by_bucket.setdefault(bucket_of(name, 64), []).append(name)
    seconds = []
    with WarehouseWriter(settings) as writer:
        for c in range(commits):
            start = c * per_commit
            ids = range(start, start + per_commit)
            batch = [(_event(i, names[i % customers]), 0, i) for i in ids]
            counts = (c + 1) * per_commit // customers
            facts = {b: [_facts(n, counts) for n in ns] for b, ns in by_bucket.items()}
            began = time.perf_counter()
            writer.commit(batch, facts, {0: start + per_commit}, batch[-1][0].timestamp, None)
            seconds.append(time.perf_counter() - began)
    return seconds


def bench_iter_events(data_dir: Path) -> tuple[int, float]:
    """(events, seconds) to read every stored event back as canonical events."""
    with WarehouseWriter(WarehouseSettings(data_dir=data_dir, buckets=64)) as writer:
        began = time.perf_counter()
        count = sum(len(chunk) for chunk in writer.iter_events(50_000))
        return count, time.perf_counter() - began


def build_funnel_snapshot(root: Path, customers: int, buckets: int = 64) -> Snapshot:
    """Bucketed customers and stage_entries files for `customers` customers, written by DuckDB."""
    con = duckdb.connect()
    tables: dict[str, tuple[DataFile, ...]] = {"customers": (), "stage_entries": ()}
    for name in tables:
        (root / name).mkdir(parents=True, exist_ok=True)
    # Buckets by i % buckets, not bucket_of: the query does not care, and SQL stays simple.
    con.execute(f"""CREATE TABLE c AS SELECT 'cust-' || i AS customer_id, i % {buckets} AS b,
        TIMESTAMPTZ '2026-01-01' + to_seconds(i % 5000000) AS first_seen
        FROM range({customers}) t(i)""")
    for b in range(buckets):
        cust = f"customers/b{b:04d}-bench.parquet"
        entries = f"stage_entries/b{b:04d}-bench.parquet"
        con.execute(f"""COPY (SELECT customer_id, customer_id AS user_id, first_seen,
            first_seen AS last_seen, 3::BIGINT AS event_count, 'web' AS first_channel,
            '(direct)' AS first_source, '(none)' AS first_medium, '{{}}' AS traits
            FROM c WHERE b = {b}) TO '{root / cust}' (FORMAT parquet, COMPRESSION zstd)""")
        con.execute(f"""COPY (SELECT customer_id, 'default' AS model, s.stage,
            s.k::BIGINT AS stage_index, first_seen + to_seconds(s.k * (hash(customer_id) % 86400))
            AS entered_at, false AS inferred, 'e0' AS event_id
            FROM c, (VALUES (0, 'awareness'), (1, 'consideration'), (2, 'decision'),
                            (3, 'retention')) s(k, stage)
            WHERE b = {b} AND hash(customer_id || s.stage) % 10 < 10 - 3 * s.k)
            TO '{root / entries}' (FORMAT parquet, COMPRESSION zstd)""")
        n_cust, n_entries = (con.execute(f"SELECT count(*) FROM '{root / p}'").fetchone()
                             for p in (cust, entries))
        assert n_cust is not None and n_entries is not None
        tables["customers"] += (DataFile(cust, n_cust[0], b),)
        tables["stage_entries"] += (DataFile(entries, n_entries[0], b),)
    con.close()
    return Snapshot(root, Manifest(version=1, tables=tables, buckets=buckets))


def bench_funnel(snap: Snapshot, runs: int) -> tuple[int, list[float]]:
    """(stage_entries rows, seconds per run) of the funnel aggregate in a fresh connection."""
    con = duckdb.connect()
    register_views(con, snap)
    seconds = []
    for _ in range(runs):
        began = time.perf_counter()
        con.execute(FUNNEL_SQL).fetchall()
        seconds.append(time.perf_counter() - began)
    return snap.manifest.rows("stage_entries"), seconds


def main() -> None:
    """Run the three measurements and print a table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--commits", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        commit_s = bench_commits(data_dir, args.commits, 10_000, 5_000)
        events, iter_s = bench_iter_events(data_dir)
        snap = build_funnel_snapshot(data_dir / "funnel", args.customers)
        rows, funnel_s = bench_funnel(snap, 5)
    print(f"{'measure':<52} {'value':>14}")
    print(f"{'commit: 10k events + 64 buckets (5k customers), median':<52} "
          f"{statistics.median(commit_s) * 1000:>11.0f} ms")
    print(f"{'commit: max of ' + str(len(commit_s)):<52} {max(commit_s) * 1000:>11.0f} ms")
    print(f"{'iter_events: ' + str(events) + ' events':<52} {events / iter_s:>9.0f} ev/s")
    print(f"{'funnel over ' + str(args.customers) + ' customers, ' + str(rows) + ' entries':<52} "
          f"{statistics.median(funnel_s) * 1000:>11.0f} ms")


if __name__ == "__main__":
    main()

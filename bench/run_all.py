"""THE pipeline benchmark table: ingest, processor, freshness, API latency, peak memory.

    .venv/bin/python bench/run_all.py [--quick] [--out bench/results.md]

Starts a throw-away Kafka broker (scripts/kafka.sh) on this machine, runs every measurement of
bench/bench_pipeline.py on the embedded log and on Kafka, and bench/bench_api.py on its
warehouse-shaped data, then prints one Markdown table against the targets and writes it to --out.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import bench_pipeline as pipe
from bench.common import REPO, kafka_broker, kafka_pid, peak_rss_mb

Row = tuple[str, str, str, str]  # measure, value, target, notes
API_CHILD = (
    "import resource, runpy, sys; sys.argv = ['bench_api.py', *sys.argv[1:]]; "
    "runpy.run_path('bench/bench_api.py', run_name='__main__'); "
    "print('PEAK_RSS_MB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
)


def verdict(value: float, target: float, higher_is_better: bool = True) -> str:
    ok = value >= target if higher_is_better else value <= target
    return "met" if ok else "NOT met"


def api_latency(events: int, repeat: int, budget_s: float) -> dict[str, Any]:
    """Served and cold p50/p95 (ms) of /v1/funnel and /v1/kpis at `events` stored events."""
    out = subprocess.run(
        [sys.executable, "-c", API_CHILD, "--events", str(events), "--repeat", str(repeat),
         "--budget", str(budget_s)], cwd=REPO, check=True, capture_output=True, text=True,
    ).stdout
    figures: dict[str, Any] = {"rss_mb": float(out.rsplit("PEAK_RSS_MB", 1)[1])}
    for url in ("/v1/funnel", "/v1/kpis"):
        line = re.search(rf"^{re.escape(url)}\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", out,
                         re.M)
        if line is None:
            raise SystemExit(f"bench_api printed no line for {url}:\n{out}")
        figures[url] = [float(g) for g in line.groups()]  # cold p50, cold p95, srv p50, srv p95
    return figures


def timed(label: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    began = time.perf_counter()
    print(f"... {label}", flush=True)
    result = fn()
    print(f"    {result}  ({time.perf_counter() - began:.0f}s)", flush=True)
    return result


def measure(quick: bool, rows: list[Row]) -> None:
    """Run every measurement and append its rows."""
    requests, customers = (60, 600) if quick else (300, 2000)
    fresh_rates, fresh_s = ([10_000], 10.0) if quick else ([1_000, 10_000], 20.0)
    api_sizes = [1_000_000] if quick else [1_000_000, 10_000_000]
    rss: dict[str, float] = {}
    with (
        tempfile.TemporaryDirectory(prefix="bench-kafka-") as kdir,
        kafka_broker(Path(kdir)) as bootstrap,
    ):
        for name, boot in (("embedded", None), ("Kafka", bootstrap)):
            r = timed(f"ingest {name}", partial(pipe.ingest, boot, requests))
            rows.append((f"ingest /v1/batch -> {name} log", f"{r['events_per_s']:,.0f} ev/s",
                         ">= 50,000 ev/s " + verdict(r["events_per_s"], 50_000),
                         f"{r['events']:,} events, {r['clients']} clients x 100-event batches"))
            rss[f"collector ({name})"] = r["collector_rss_mb"]
        for name, boot in (("embedded", None), ("Kafka", bootstrap)):
            r = timed(f"processor {name}", partial(pipe.processor, boot, customers))
            rows.append((f"processor catch-up, {name} log", f"{r['events_per_s']:,.0f} ev/s "
                         f"wall, {r['events_per_cpu_s']:,.0f} ev/CPU-s",
                         ">= 100,000 ev/s/core " + verdict(r["events_per_cpu_s"], 100_000),
                         f"{r['events']:,} demo events ({customers:,} customers), "
                         f"{r['batches']} batches"))
            rss[f"processor ({name})"] = r["processor_rss_mb"]
        for name, boot in (("embedded", None), ("Kafka", bootstrap)):
            for rate in fresh_rates:
                r = timed(f"freshness {name} {rate}",
                          partial(pipe.freshness, boot, rate, fresh_s))
                bound = ">= " if r["unseen_batches"] else ""
                rows.append((f"freshness POST->API, {name}, {rate:,} ev/s offered",
                             # Batches never seen would only raise the quantiles: then bounds.
                             f"p50 {bound}{r['fresh_p50_s']:.2f} s, "
                             f"p95 {bound}{r['fresh_p95_s']:.2f} s",
                             "p95 <= 2 s " + verdict(r["fresh_p95_s"], 2.0, False)
                             if rate == 10_000 else "",
                             f"offer achieved {r['achieved_offer']:,.0f} ev/s for {fresh_s:.0f}"
                             f" s; {r['visible']:,}/{r['sent']:,} visible, "
                             f"{r['unseen_batches']} batches never seen (30 s drain)"))
                rss[f"journey up server ({name}, {rate:,}/s)"] = r["up_rss_mb"]
                rss[f"journey up processor child ({name}, {rate:,}/s)"] = \
                    r["processor_child_rss_mb"]
        pid = kafka_pid(Path(kdir))
        rss["Kafka broker (JVM, 512m heap)"] = peak_rss_mb(pid) if pid else 0.0
    for size in api_sizes:
        r = timed(f"api {size:,}", partial(api_latency, size, 20, 2.0))
        for url in ("/v1/funnel", "/v1/kpis"):
            cold50, cold95, srv50, srv95 = r[url]
            rows.append((f"{url} at {size / 1e6:.0f}M events", f"p50 {srv50:.1f} ms, "
                         f"p95 {srv95:.1f} ms", "p95 <= 50 ms " + verdict(srv95, 50, False)
                         if size == 10_000_000 else "",
                         f"as served (cached per snapshot); uncached SQL p50 {cold50:.0f} ms, "
                         f"p95 {cold95:.0f} ms"))
        rss[f"API process ({size / 1e6:.0f}M events)"] = r["rss_mb"]
    for name, mb in rss.items():
        rows.append((f"peak RSS: {name}", f"{mb:,.0f} MiB", "", ""))


def table(rows: list[Row], header: str) -> str:
    lines = [header, "", "| measure | value | target | notes |", "|---|---|---|---|"]
    lines += [f"| {' | '.join(r)} |" for r in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Run everything, print the table, write it to --out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="~2-minute version, smaller runs")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results.md")
    args = parser.parse_args()
    began = time.perf_counter()
    load_before = os.getloadavg()[0]
    rows: list[Row] = []
    measure(args.quick, rows)
    header = (
        f"## journey pipeline benchmark{' (--quick)' if args.quick else ''}\n\n"
        f"{os.cpu_count()} cores, broker co-located, load average {load_before:.1f} at start and "
        f"{os.getloadavg()[0]:.1f} at end (the machine is shared), "
        f"{time.perf_counter() - began:.0f} s in all. ev/CPU-s = events per CPU second of the "
        "processor process (its per-core rate whatever else runs)."
    )
    text = table(rows, header)
    print(text)
    args.out.write_text(text)


if __name__ == "__main__":
    main()

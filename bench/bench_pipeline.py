"""Pipeline benchmarks on real processes: collector ingest, processor catch-up, freshness.

    .venv/bin/python bench/bench_pipeline.py ingest|processor|freshness [--bootstrap HOST:PORT]

Each measurement starts its own children (collector on uvicorn, processor, `journey up`) in a
fresh data directory, on the embedded log or on the Kafka broker given by --bootstrap, and
returns a dict of figures (printed as JSON when run alone). bench/run_all.py builds the table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REPO, demo_events, free_port, peak_rss_mb, tree_peak_rss_mb

WRITE_KEY, TOKEN, PARTITIONS = "bench-wk", "bench-token", 6
DRAIN_S = 30.0  # how long freshness waits for the last batches to become visible
Figures = dict[str, Any]


def track(i: int, at: datetime) -> dict[str, Any]:
    """A realistic analytics.js track call: visitors make ten calls each, a third of them
    signed in (one user per browser, as on a real site; a browser shared by hundreds of users
    would join them all into one identity component that every batch re-derives)."""
    visitor = i // 10
    return {
        "type": "track", "event": "Product Viewed", "messageId": uuid.uuid4().hex,
        "anonymousId": f"anon-{visitor}",
        "userId": f"user-{visitor}" if visitor % 3 == 0 and i % 10 >= 5 else None,
        "properties": {"sku": f"SKU-{i % 500}", "price": 19.99, "currency": "EUR"},
        "context": {"page": {"url": f"https://shop.example/p/{i % 500}?utm_source=news",
                             "referrer": "https://www.google.com/"}, "locale": "en-GB"},
        "timestamp": at.isoformat().replace("+00:00", "Z"),
    }


def body(first: int, size: int = 100) -> bytes:
    """A /v1/batch body of `size` fresh track calls."""
    now = datetime.now(UTC)
    return orjson.dumps({"batch": [track(first + k, now) for k in range(size)]})


def child_env(data_dir: Path, bootstrap: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOURNEY_")}
    env |= {"JOURNEY_DATA_DIR": str(data_dir), "JOURNEY_WRITE_KEYS": WRITE_KEY,
            "JOURNEY_API_TOKENS": TOKEN, "JOURNEY_PARTITIONS": str(PARTITIONS),
            "JOURNEY_TOPIC": f"bench.{uuid.uuid4().hex[:8]}"}
    return env | ({"JOURNEY_KAFKA_BOOTSTRAP": bootstrap} if bootstrap else {})


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --- collector ingest ---------------------------------------------------------------------

def serve_collector(port: int) -> None:
    """Child: the collector app alone on uvicorn (settings from the environment)."""
    import uvicorn

    from ingest.app import create_app
    from ingest.settings import IngestSettings
    from journey.log.factory import open_producer

    settings = IngestSettings()
    producer = open_producer(settings)
    try:
        uvicorn.run(create_app(settings, producer), host="127.0.0.1", port=port,
                    log_level="warning")
    finally:
        producer.close()


async def send_batches(base: str, bodies: list[bytes], clients: int) -> float:
    """Seconds to POST every body to /v1/batch from `clients` concurrent connections."""
    queue = list(reversed(bodies))
    auth = httpx.BasicAuth(WRITE_KEY, "")

    async def client(http: httpx.AsyncClient) -> None:
        while queue:
            r = await http.post(f"{base}/v1/batch", content=queue.pop(), auth=auth)
            r.raise_for_status()

    async with httpx.AsyncClient(timeout=60) as http:
        began = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        return time.perf_counter() - began


def ingest(bootstrap: str | None, requests: int, clients: int = 8) -> Figures:
    """Collector events/s through /v1/batch (100 events per request) into the log."""
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        port = free_port()
        proc = subprocess.Popen([sys.executable, __file__, "serve-collector", str(port)],
                                cwd=REPO, env=child_env(Path(tmp), bootstrap))
        try:
            wait_ready(f"http://127.0.0.1:{port}/healthz", proc)
            warm = [body(10**9 + i * 100) for i in range(clients)]
            asyncio.run(send_batches(f"http://127.0.0.1:{port}", warm, clients))
            bodies = [body(i * 100) for i in range(requests)]
            seconds = asyncio.run(send_batches(f"http://127.0.0.1:{port}", bodies, clients))
            rss = peak_rss_mb(proc.pid)
        finally:
            stop(proc)
    events = requests * 100
    return {"events": events, "seconds": seconds, "events_per_s": events / seconds,
            "collector_rss_mb": rss, "clients": clients}


# --- processor catch-up -------------------------------------------------------------------

def run_processor(expected: int) -> Figures:
    """Child: build the processor, consume until `expected` new events are committed."""
    from processor.app import build
    from processor.settings import ProcessorSettings

    processor, writer = build(ProcessorSettings(), threading.Event())
    began, cpu, done, batches = time.perf_counter(), time.process_time(), 0, 0
    try:
        while done < expected and time.perf_counter() - began < 900:
            stats = processor.run_once()
            done, batches = done + stats.new_events, batches + (1 if stats.records else 0)
    finally:
        writer.close()
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    return {"events": done, "seconds": seconds, "cpu_s": cpu, "batches": batches,
            "events_per_s": done / seconds, "events_per_cpu_s": done / cpu,
            "processor_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def processor(bootstrap: str | None, customers: int) -> Figures:
    """Processor catch-up rate over demo events already in the log (default settings)."""
    from ingest.routes import partition_key
    from journey.log.factory import open_producer
    from journey.settings import CommonSettings

    events = demo_events(customers)
    with tempfile.TemporaryDirectory(prefix="bench-proc-") as tmp:
        env = child_env(Path(tmp), bootstrap)
        settings = CommonSettings(data_dir=Path(tmp), kafka_bootstrap=bootstrap,
                                  topic=env["JOURNEY_TOPIC"], partitions=PARTITIONS)
        producer = open_producer(settings)
        try:
            for first in range(0, len(events), 1000):
                producer.append([(partition_key(e), e.to_json())
                                 for e in events[first:first + 1000]])
        finally:
            producer.close()
        out = subprocess.run([sys.executable, __file__, "run-processor", str(len(events))],
                             cwd=REPO, env=env, check=True, capture_output=True)
    figures: Figures = orjson.loads(out.stdout.splitlines()[-1])
    return figures | {"customers": customers}


# --- end-to-end freshness -----------------------------------------------------------------

async def paced(base: str, rate: int, seconds: float, visible: list[tuple[float, int]]) -> Figures:
    """Offer `rate` events/s for `seconds` while polling /v1/kpis; freshness per batch."""
    sent: list[tuple[float, int]] = []  # (POST start, events sent through this batch)
    answered: list[float] = []  # seconds each POST took (the collector's share of freshness)
    interval, total = 100 / rate, int(rate * seconds) // 100
    bodies = [body(i * 100) for i in range(total)]
    auth = httpx.BasicAuth(WRITE_KEY, "")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    done = asyncio.Event()

    async def poll(http: httpx.AsyncClient) -> None:
        while not done.is_set():
            try:
                r = await http.get(f"{base}/v1/kpis", headers=headers)
            except httpx.TransportError:  # a dropped keep-alive under load: just poll again
                continue
            if r.status_code == 200:
                visible.append((time.perf_counter(), int(r.json()["events"])))
            await asyncio.sleep(0.05)

    async def post(http: httpx.AsyncClient, i: int) -> None:
        began = time.perf_counter()
        for attempt in range(3):  # an SDK retries a dropped connection; so do we
            try:
                r = await http.post(f"{base}/v1/batch", content=bodies[i], auth=auth)
                break
            except httpx.TransportError:
                if attempt == 2:
                    raise
        r.raise_for_status()
        sent.append((began, (i + 1) * 100))
        answered.append(time.perf_counter() - began)

    async with (
        httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=64)) as http,
        httpx.AsyncClient(timeout=60) as poll_http,
    ):
        poller = asyncio.create_task(poll(poll_http))
        start, posts = time.perf_counter(), []
        for i in range(total):
            await asyncio.sleep(max(0.0, start + i * interval - time.perf_counter()))
            posts.append(asyncio.create_task(post(http, i)))
        await asyncio.gather(*posts)
        offered_s = time.perf_counter() - start
        deadline = time.perf_counter() + DRAIN_S
        while (not visible or visible[-1][1] < total * 100) and time.perf_counter() < deadline:
            await asyncio.sleep(0.1)
        done.set()
        await poller
    # Batch i is visible once the API counts (i+1)*100 events (counts only grow).
    lags = [next((t for t, n in visible if n >= count and t >= began), None) for began, count in
            sorted(sent, key=lambda s: s[1])]
    seen = [lag - s[0] for lag, s in zip(lags, sorted(sent, key=lambda s: s[1]), strict=True)
            if lag is not None]
    cuts = statistics.quantiles(seen, n=20) if len(seen) > 1 else [float("nan")] * 19
    return {"offered_rate": rate, "achieved_offer": total * 100 / offered_s,
            "sent": total * 100, "visible": visible[-1][1] if visible else 0,
            "fresh_p50_s": statistics.median(seen) if seen else float("nan"),
            "fresh_p95_s": cuts[18], "unseen_batches": lags.count(None),
            "api_longest_still_s": longest_still(visible, total * 100),
            "post_p50_s": statistics.median(answered) if answered else float("nan"),
            "post_p95_s": (statistics.quantiles(answered, n=20)[18] if len(answered) > 1
                           else float("nan"))}


def longest_still(visible: list[tuple[float, int]], total: int) -> float:
    """The longest time the served count stood still while events were still to show: a stalled
    API shows here as minutes where a healthy one stays within a few seconds."""
    longest, since = 0.0, None
    for (t0, n0), (t1, n1) in itertools.pairwise(visible):
        if since is None:
            since = t0
        if n1 != n0 or n0 >= total:
            longest, since = max(longest, t1 - since), None
    if since is not None and visible:
        longest = max(longest, visible[-1][0] - since)
    return longest


def where_time_went(base: str) -> Figures:
    """The parts of freshness, from the pipeline's own /metrics (means over the run): the
    processor's batches (poll to commit) and commits, and the API's moves to new snapshots and
    its delay from a commit to serving it."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith(("_sum", "_count")):
                how = sample.labels.get("how")
                name = sample.name + (f"[{how}]" if how else "")
                sums[name] = sums.get(name, 0.0) + sample.value

    def mean(name: str, how: str = "") -> float:
        count = sums.get(f"{name}_count{how}", 0.0)
        return sums.get(f"{name}_sum{how}", 0.0) / count if count else float("nan")

    return {"batches": int(sums.get("journey_processor_batch_seconds_count", 0)),
            "batch_records_mean": mean("journey_processor_batch_records"),
            "batch_s_mean": mean("journey_processor_batch_seconds"),
            "commit_s_mean": mean("journey_processor_commit_seconds"),
            "api_advances": int(sums.get("journey_api_snapshot_load_seconds_count[advanced]", 0)),
            "api_advance_s_mean": mean("journey_api_snapshot_load_seconds", "[advanced]"),
            "api_builds": int(sums.get("journey_api_snapshot_load_seconds_count[built]", 0)),
            "api_delay_s_mean": mean("journey_api_snapshot_delay_seconds")}


def answers_agree(base: str, data_dir: Path) -> Figures:
    """The API's final events figure beside the same figure read by SQL from the snapshot it
    serves (its /metrics version) and from the newest one: an API that fell behind or lost
    rows shows here, not only as a slow drain."""
    import duckdb

    from warehouse.reader import Snapshot, WarehouseReader, register_views

    kpis = httpx.get(f"{base}/v1/kpis", headers={"Authorization": f"Bearer {TOKEN}"},
                     timeout=30).json()
    served = next((int(s.value) for f in text_string_to_metric_families(
        httpx.get(f"{base}/metrics", timeout=10).text) for s in f.samples
        if s.name == "journey_api_snapshot_version"), None)
    reader = WarehouseReader(data_dir / "warehouse")
    newest = reader.current()

    def events(version: int | None) -> int | None:
        if version is None:
            return None
        con = duckdb.connect()
        try:
            register_views(con, Snapshot(reader.location, version))
            row = con.execute("SELECT sum(event_count) FROM customers").fetchone()
        finally:
            con.close()
        return None if row is None or row[0] is None else int(row[0])

    return {"api_events": int(kpis["events"]), "api_version": served,
            "sql_events_at_api_version": events(served),
            "newest_version": newest.version if newest else None,
            "sql_events_at_newest": events(newest.version if newest else None)}


def warehouse_size(data_dir: Path) -> Figures:
    """Live Parquet files of the lake and the size of its SQLite catalog."""
    wh = data_dir / "warehouse"
    files = [p for p in wh.rglob("*.parquet")]
    catalog = wh / "catalog.sqlite"
    wal = wh / "catalog.sqlite-wal"
    return {"parquet_files": len(files),
            "parquet_mb": sum(p.stat().st_size for p in files) / 2**20,
            "catalog_mb": catalog.stat().st_size / 2**20 if catalog.exists() else 0.0,
            "catalog_wal_mb": wal.stat().st_size / 2**20 if wal.exists() else 0.0}


def freshness(bootstrap: str | None, rate: int, seconds: float,
              settings: dict[str, str] | None = None, log: Path | None = None) -> Figures:
    """`journey up` (collector + API + processor child) under a steady offered load; settings:
    JOURNEY_* variables for it (to compare a setting's effect); log: a file for its output."""
    with tempfile.TemporaryDirectory(prefix="bench-fresh-", ignore_cleanup_errors=True) as tmp:
        port = free_port()
        args = ["-m", "journey", "up", "--data-dir", tmp, "--port", str(port)]
        env = child_env(Path(tmp), bootstrap) | (settings or {})
        out = log.open("ab") if log else subprocess.DEVNULL
        proc = subprocess.Popen([sys.executable, *args], cwd=REPO, env=env,
                                stdout=out, stderr=out, start_new_session=True)
        try:
            wait_ready(f"http://127.0.0.1:{port}/healthz", proc)
            time.sleep(2)  # the processor child starts after the server
            visible: list[tuple[float, int]] = []
            figures = asyncio.run(paced(f"http://127.0.0.1:{port}", rate, seconds, visible))
            figures |= where_time_went(f"http://127.0.0.1:{port}")
            figures |= answers_agree(f"http://127.0.0.1:{port}", Path(tmp))
            figures |= warehouse_size(Path(tmp))
            figures["up_rss_mb"] = peak_rss_mb(proc.pid)
            figures["processor_child_rss_mb"] = tree_peak_rss_mb(proc.pid) - peak_rss_mb(proc.pid)
        finally:
            stop(proc)
            # The processor child may outlive its parent for a moment: end the whole session we
            # started before its data directory is removed.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            time.sleep(0.5)
            if log:
                out.close()
    return figures


def main() -> None:
    """Run one measurement and print its figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["ingest", "processor", "freshness", "serve-collector",
                                         "run-processor"])
    parser.add_argument("arg", nargs="?", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--rate", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--set", action="append", default=[], metavar="JOURNEY_X=V",
                        help="a setting for `journey up` under freshness (repeatable)")
    parser.add_argument("--log", type=Path, help="append `journey up`'s output to this file")
    a = parser.parse_args()
    if a.what == "serve-collector":
        serve_collector(a.arg)
        return
    result = {
        "ingest": lambda: ingest(a.bootstrap, a.requests),
        "processor": lambda: processor(a.bootstrap, a.customers),
        "freshness": lambda: freshness(a.bootstrap, a.rate, a.seconds,
                                       dict(kv.split("=", 1) for kv in a.set), a.log),
        "run-processor": lambda: run_processor(a.arg),
    }[a.what]()
    print(orjson.dumps(result).decode(), flush=True)


if __name__ == "__main__":
    main()

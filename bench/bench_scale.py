"""Scale benchmark (issue "Scale: a batch costs what it holds"): processor catch-up, memory,
rebuild and API pickup at 1M and 10M events of realistic multi-channel traffic.

    .venv/bin/python bench/bench_scale.py --events 1000000 10000000   # or: make bench-scale

Each size gets two logs (all in order, and 10% late by up to 3 days); a `journey processor`-like
child process catches up on each (events per CPU-second and peak RSS of that process); then
`journey rebuild` re-derives the late one (wall time, peak RSS), and an API process is timed from
a commit to serving it. Prints one Markdown table; every row names the load average.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import peak_rss_mb, rss_mb, tree_rss_mb  # noqa: E402
from bench.scale_data import stream  # noqa: E402
from journey.log.embedded import EmbeddedLog  # noqa: E402

PARTITIONS = 6


def load() -> str:
    """The 1-minute load average, for the table."""
    return f"{os.getloadavg()[0]:.1f}"


def make_log(data: Path, events: int, late: float) -> int:
    """Write the traffic to an embedded log under data; the number of records."""
    log = EmbeddedLog(data / "log", PARTITIONS)
    n = 0
    chunk: list[tuple[bytes, bytes]] = []
    try:
        for item in stream(events, late):
            chunk.append(item)
            if len(chunk) == 20_000:
                log.append(chunk)
                n += len(chunk)
                chunk = []
        if chunk:
            log.append(chunk)
            n += len(chunk)
    finally:
        log.close()
    return n


def catch_up(data: Path, deadline_s: float = 0.0) -> dict[str, Any]:
    """(In the child) run the processor until it has committed the whole log (or for at most
    deadline_s seconds of wall time, when given)."""
    from processor.app import build
    from processor.settings import ProcessorSettings

    _log_with_peak()
    settings = ProcessorSettings(data_dir=data, partitions=PARTITIONS)
    log = EmbeddedLog(data / "log", PARTITIONS)
    end = log.end_offsets()
    log.close()
    began, cpu0 = time.perf_counter(), time.process_time()
    processor, writer = build(settings, threading.Event())
    started, started_cpu = time.perf_counter() - began, time.process_time() - cpu0
    events = extended = rederived = batches = 0
    peak = 0.0
    try:
        while True:
            stats = processor.run_once()
            events += stats.new_events
            extended += stats.extended
            rederived += stats.rederived
            batches += 1 if stats.records else 0
            rss = rss_mb(os.getpid())
            # VmHWM also catches a peak inside the batch (DuckDB's working memory, maintenance),
            # which the resident set after it no longer shows.
            hwm = peak_rss_mb(os.getpid())
            if hwm > peak + 25:  # which batches raise the peak, and what they held
                peak = hwm
                print(json.dumps({"events": events, "batch": batches, "rss_mb": round(rss),
                                  "hwm_mb": round(hwm),
                                  "batch_records": stats.records,
                                  "batch_extended": stats.extended,
                                  "batch_rederived": stats.rederived}), file=sys.stderr,
                      flush=True)
            if events // 1_000_000 > (events - stats.new_events) // 1_000_000:
                # Per million events: whether the cost per event grows with history.
                print(json.dumps({"events": events, "cpu_s": round(time.process_time() - cpu0, 1),
                                  "rss_mb": round(rss_mb(os.getpid())),
                                  "customers": processor.customers}), file=sys.stderr, flush=True)
            if not stats.records and all(
                    writer.state().offsets.get(p, 0) >= o for p, o in end.items()):
                break
            if deadline_s and time.perf_counter() - began > deadline_s:
                break
    finally:
        writer.close()
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - began
    return {"events": events, "cpu_s": cpu, "wall_s": wall, "start_s": started,
            "start_cpu_s": started_cpu,
            "batches": batches, "extended": extended, "rederived": rederived,
            "customers": processor.customers,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


class _Peak(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.hwm = round(peak_rss_mb(os.getpid()))
        return True


def _log_with_peak() -> None:
    """The processor's warnings, and the warehouse's timing of each maintenance step, on stderr
    with the process's peak RSS so far: which step raises it."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_Peak())
    handler.setFormatter(logging.Formatter(
        "%(asctime)s %(name)s %(levelname)s [peak %(hwm)s MiB] %(message)s"))
    logging.getLogger("journey").addHandler(handler)
    logging.getLogger("journey").setLevel(logging.WARNING)
    logging.getLogger("journey.warehouse").setLevel(logging.DEBUG)


def load_events(data: Path) -> int:
    """(In the child) store every logged event in the warehouse as it is, deriving nothing: the
    start of a rebuild-only run, whose derived tables `journey rebuild` then fills."""
    from journey.facts import Changes
    from processor.runner import decode
    from warehouse.settings import WarehouseSettings
    from warehouse.writer import WarehouseWriter

    log = EmbeddedLog(data / "log", PARTITIONS)
    writer = WarehouseWriter(WarehouseSettings(data_dir=data))
    writer.open()
    stored = 0
    try:
        log.seek({p: 0 for p in log.partitions()})
        while records := log.poll(200_000, 0.0):
            offsets = {r.partition: r.offset + 1 for r in records}
            writer.commit([(decode(r), r.partition, r.offset) for r in records], Changes(),
                          offsets, None)
            stored += len(records)
    finally:
        writer.close()
        log.close()
    return stored


def child(args: list[str]) -> dict[str, Any]:
    """Run this script's child mode in a fresh process (its own peak RSS); its JSON answer."""
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                         check=False)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def rebuild(data: Path) -> dict[str, Any]:
    """`journey rebuild` as a child process: wall time, CPU-seconds of it and its workers, and
    the peak of their summed resident memory (sampled every 0.2 s)."""
    began = time.perf_counter()
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    # Output to a file, not a pipe nobody reads while the rebuild runs (a full pipe blocks it).
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen([sys.executable, "-m", "journey", "rebuild", "--data-dir",
                                 str(data)], stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        peak = 0.0
        while proc.poll() is None:
            peak = max(peak, tree_rss_mb(proc.pid))
            time.sleep(0.2)
        if proc.returncode != 0:
            out.seek(0)
            raise RuntimeError(out.read().decode(errors="replace")[-3000:])
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    return {"wall_s": time.perf_counter() - began, "cpu_s": cpu, "peak_rss_mb": peak}


def api_pickup(data: Path, late: float) -> float:
    """Seconds from a commit to the API serving it: an API process serves the warehouse, 1,000
    new events are committed by a processor, and /readyz is polled until it reports that
    version."""

    from bench.common import free_port
    from warehouse.reader import WarehouseReader

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOURNEY_")}
    env |= {"JOURNEY_DATA_DIR": str(data), "JOURNEY_API_TOKENS": "bench",
            "JOURNEY_PORT": str(port), "JOURNEY_PARTITIONS": str(PARTITIONS)}
    api = subprocess.Popen([sys.executable, "-m", "journey", "api"], cwd=REPO, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        version = _wait_version(base, api, lambda v: v is not None, 900)
        log = EmbeddedLog(data / "log", PARTITIONS)
        try:
            fresh = [(k, v.replace(b'"event_id":"e', b'"event_id":"pickup-e', 1))
                     for k, v in stream(1000, late, seed=99)]
            log.append(fresh)
        finally:
            log.close()
        child(["--child-catch-up", str(data)])
        committed_at = time.perf_counter()
        snap = WarehouseReader(data / "warehouse").current()
        target = snap.version if snap else 0
        assert target > (version or 0)
        _wait_version(base, api, lambda v: v is not None and v >= target, 900)
        return time.perf_counter() - committed_at
    finally:
        api.terminate()
        api.wait(timeout=30)


def _wait_version(base: str, proc: subprocess.Popen[bytes], ok: Any, timeout_s: float) -> Any:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            r = httpx.get(f"{base}/readyz", timeout=2)
            version = r.json().get("version") if r.status_code == 200 else None
            if ok(version):
                return version
        except (httpx.TransportError, ValueError):
            pass
        time.sleep(0.02)
    raise RuntimeError("the API did not serve the expected snapshot in time")


def rebuild_only(data: Path, size: int, late: float) -> str:
    """One table row: `journey rebuild` of a warehouse holding `size` stored events."""
    if not (data / "log").exists():
        make_log(data, size, late)
    if not (data / "warehouse").exists():
        child(["--child-load", str(data)])
    b = rebuild(data)
    return (f"| {size:,} | {late:.0%} late | journey rebuild (events stored, nothing derived) | "
            f"{b['wall_s']:.0f} s wall, {b['cpu_s']:.0f} CPU-s, peak RSS {b['peak_rss_mb']:,.0f} "
            f"MiB (with its workers) | {load()} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--late", type=float, default=0.1)
    parser.add_argument("--child-catch-up", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-load", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--rebuild-only", action="store_true",
                        help="time `journey rebuild` alone, on a warehouse whose events were "
                             "stored without deriving (the late log)")
    parser.add_argument("--keep", type=Path, help="keep the data under this directory")
    parser.add_argument("--deadline-s", type=float, default=0.0,
                        help="(child) stop catching up after this many seconds of wall time")
    args = parser.parse_args()
    if args.child_catch_up:
        print(json.dumps(catch_up(args.child_catch_up, args.deadline_s)))
        return
    if args.child_load:
        print(json.dumps({"events": load_events(args.child_load)}))
        return
    rows: list[str] = ["| events | log | measure | value | load |", "|---|---|---|---|---|"]
    root = args.keep or Path(tempfile.mkdtemp(prefix="journey-scale-"))
    for size in args.events:
        if args.rebuild_only:
            rows.append(rebuild_only(root / f"{size}-{int(args.late * 100)}-rebuild", size,
                                     args.late))
            print("\n".join(rows), file=sys.stderr)
            continue
        for late in (0.0, args.late):
            name = "in order" if late == 0 else f"{late:.0%} late"
            data = root / f"{size}-{int(late * 100)}"
            if not (data / "log").exists():
                made = make_log(data, size, late)
                print(f"{size:,} / {name}: {made:,} records written", file=sys.stderr)
            r = child(["--child-catch-up", str(data)])
            rate = r["events"] / r["cpu_s"]
            rows.append(f"| {size:,} | {name} | catch-up | {rate:,.0f} ev per CPU-s "
                        f"({r['events']:,} events, {r['cpu_s']:.0f} CPU-s, {r['wall_s']:.0f} s "
                        f"wall, {r['extended']:,} extends, {r['rederived']:,} re-derivations) "
                        f"| {load()} |")
            rows.append(f"| {size:,} | {name} | processor peak RSS | "
                        f"{r['peak_rss_mb']:,.0f} MiB ({r['customers']:,} customers) | {load()} |")
            print("\n".join(rows), file=sys.stderr)
            if late:
                b = rebuild(data)
                rows.append(f"| {size:,} | {name} | journey rebuild | {b['wall_s']:.0f} s wall, "
                            f"{b['cpu_s']:.0f} CPU-s, peak RSS {b['peak_rss_mb']:,.0f} MiB (with "
                            f"its workers) | {load()} |")
                restart = child(["--child-catch-up", str(data)])
                rows.append(f"| {size:,} | {name} | processor restart (state restore) | "
                            f"{restart['start_s']:.1f} s | {load()} |")
                pickup = api_pickup(data, late)
                rows.append(f"| {size:,} | {name} | API: commit to served | {pickup:.1f} s "
                            f"| {load()} |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

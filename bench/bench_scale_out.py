"""Scale-out benchmark (issue "Scale-out"): 1, 2 and 4 `journey processor` processes catch up on
the same Kafka backlog in one consumer group and one warehouse.

    .venv/bin/python bench/bench_scale_out.py [--events 200000] [--processors 1,2,4]
    make bench-scale-out SCALE_OUT_EVENTS=200000 PROCESSORS=1,2,4

Starts a throw-away broker (scripts/kafka.sh), writes bench/scale_data.py's multi-channel traffic
(10% late, identity merges across partitions) once to a topic of 12 partitions, then per N starts
N processors together on a fresh data dir with a fresh consumer group and waits until the
warehouse's committed offsets reach the log end. Wall time runs from the first spawn to that
moment; the CPU-seconds and peak RSS of each processor are read from /proc at that moment (so
stopping is not counted). On 2 cores wall time cannot scale much: CPU-seconds per event show
what the coordination costs (every processor holds the whole state, so it catches up on the
others' commits under the commit lock). Prints one Markdown table; --json writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import kafka_broker, kafka_pid, peak_rss_mb  # noqa: E402
from bench.scale_data import stream  # noqa: E402

PARTITIONS = 12
POLL_S = 0.5  # the bench's own polling of the catalog shares the cores with the processors
TICKS = os.sysconf("SC_CLK_TCK")
SHIM = "BENCH-SHIM"
TABLES = ("events", "customers", "identities", "sessions")


@dataclass
class Run:
    """The figures of one run with N processors."""

    processors: int
    wall_s: float = 0.0
    cpu_s: float = 0.0
    start_cpu_s: float = 0.0  # summed over the processors: import, restore, joining the group
    broker_cpu_s: float = 0.0
    peak_rss_mb: list[float] = field(default_factory=list)
    load_before: float = 0.0
    load_mean: float = 0.0
    load_max: float = 0.0
    batches: int = 0
    records_read: int = 0  # more than the backlog: records read again around hand-overs
    events_each: list[int] = field(default_factory=list)  # new events each processor committed
    assignments: int = 0
    catchups: int = 0
    caught_events: int = 0
    caught_customers: int = 0
    catchup_cpu_s: float = 0.0
    catchup_wall_s: float = 0.0
    lock_wait_s: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)


def cpu_s(pid: int) -> float:
    """utime + stime of a live process (all its threads), in seconds; 0 when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()  # the command name may hold spaces
    return (int(fields[11]) + int(fields[12])) / TICKS


def write_backlog(bootstrap: str, topic: str, events: int, late: float) -> int:
    """Append the traffic to the topic; the number of distinct event ids written."""
    from journey.log.kafka import KafkaLog

    log = KafkaLog(bootstrap, topic, partitions=PARTITIONS)
    ids: set[bytes] = set()
    chunk: list[tuple[bytes, bytes]] = []
    try:
        for key, value in stream(events, late):
            ids.add(value[: value.index(b'","')])  # starts with {"event_id":"e<n>
            chunk.append((key, value))
            if len(chunk) == 10_000:
                log.append(chunk)
                chunk = []
        log.append(chunk)
    finally:
        log.close()
    return len(ids)


def log_end(bootstrap: str, topic: str) -> dict[int, int]:
    from journey.log.kafka import KafkaLog

    log = KafkaLog(bootstrap, topic)
    try:
        return log.end_offsets()
    finally:
        log.close()


def committed(warehouse: Path) -> dict[int, int]:
    from warehouse.reader import WarehouseReader

    reader = WarehouseReader(warehouse)
    snap = reader.current()
    return reader.offsets(snap) if snap is not None else {}


def table_counts(warehouse: Path) -> dict[str, int]:
    import duckdb

    from warehouse.reader import WarehouseReader

    reader = WarehouseReader(warehouse)
    snap = reader.current()
    assert snap is not None
    con = duckdb.connect()
    reader.register_views(con, snap)
    counts = {t: int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # type: ignore[index]
              for t in TABLES}
    counts["distinct event_id"] = int(
        con.execute("SELECT count(DISTINCT event_id) FROM events").fetchone()[0])  # type: ignore[index]
    return counts


def run_processors(n: int, root: Path, env: dict[str, str], end: dict[int, int],
                   timeout_s: float, broker: int | None) -> Run:
    """Start n processors on a fresh data dir, wait until they committed the log end, stop them."""
    data = root / f"data-{n}"
    run_env = {**env, "JOURNEY_DATA_DIR": str(data), "JOURNEY_GROUP_ID": f"bench-scale-out-{n}"}
    run = Run(processors=n, load_before=os.getloadavg()[0])
    logs = [root / f"processor-{n}-{i}.log" for i in range(n)]
    broker0 = cpu_s(broker) if broker else 0.0
    began = time.perf_counter()
    procs: list[subprocess.Popen[bytes]] = []
    for path in logs:
        with path.open("wb") as out:
            procs.append(subprocess.Popen(
                [sys.executable, __file__, "--child-processor"], cwd=REPO, env=run_env,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
    started: dict[int, float] = {}
    loads: list[float] = []
    try:
        while True:
            time.sleep(POLL_S)
            loads.append(os.getloadavg()[0])
            for i, (proc, path) in enumerate(zip(procs, logs, strict=True)):
                if proc.poll() is not None:
                    raise RuntimeError(f"processor {i} exited {proc.returncode}:\n"
                                       + path.read_text(errors="replace")[-3000:])
                if i not in started and "processor started" in path.read_text(errors="replace"):
                    started[i] = cpu_s(proc.pid)
            offsets = committed(data / "warehouse")
            if offsets and all(offsets.get(p, 0) >= o for p, o in end.items()):
                break
            if time.perf_counter() - began > timeout_s:
                raise RuntimeError(f"{n} processors did not catch up in {timeout_s:.0f} s")
        run.wall_s = time.perf_counter() - began
        run.cpu_s = sum(cpu_s(p.pid) for p in procs)
        run.peak_rss_mb = [peak_rss_mb(p.pid) for p in procs]
        run.broker_cpu_s = cpu_s(broker) - broker0 if broker else 0.0
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    run.start_cpu_s = sum(started.values())
    run.load_mean = sum(loads) / len(loads)
    run.load_max = max(loads)
    for path in logs:
        read_log(path.read_text(errors="replace"), run)
    run.counts = table_counts(data / "warehouse")
    return run


def read_log(text: str, run: Run) -> None:
    """Add what one processor's log says (batches, assignments, the shim's timings) to run."""
    run.batches += len(re.findall(r" batch: \d+ records", text))
    run.records_read += sum(int(m) for m in re.findall(r" batch: (\d+) records", text))
    run.events_each.append(sum(int(m) for m in re.findall(r" batch: \d+ records, (\d+) new", text)))
    run.assignments += len(re.findall(r"partitions \[[\d, ]+\] assigned", text))
    for line in text.splitlines():
        if not line.startswith(SHIM):
            continue
        kind, *values = line.split()[1:]
        if kind == "catch-up":
            wall, cpu, events, customers = values
            run.catchups += 1
            run.catchup_wall_s += float(wall)
            run.catchup_cpu_s += float(cpu)
            run.caught_events += int(events)
            run.caught_customers += int(customers)
        elif kind == "lock":
            run.lock_wait_s += float(values[0])


def child_processor() -> None:
    """`journey processor`, with catch-up and the commit lock's wait timed on stderr.

    The timing wraps the functions the consume loop calls; nothing of their behaviour changes.
    Catch-up CPU is the whole process's (DuckDB scans on its own threads), so it includes the
    Kafka client's background thread for that moment.
    """
    import contextlib
    from collections.abc import Iterator

    import processor.runner as runner
    from processor.catchup import Caught, catch_up
    from processor.state import JourneyState
    from warehouse.writer import Committed, WarehouseWriter

    exclusive = WarehouseWriter.exclusive

    def timed_catch_up(state: JourneyState, writer: WarehouseWriter, since: int) -> Caught:
        wall, cpu = time.perf_counter(), time.process_time()
        caught = catch_up(state, writer, since)
        print(f"{SHIM} catch-up {time.perf_counter() - wall:.6f} {time.process_time() - cpu:.6f} "
              f"{caught.events} {caught.customers}", file=sys.stderr, flush=True)
        return caught

    @contextlib.contextmanager
    def timed_exclusive(writer: WarehouseWriter) -> Iterator[Committed]:
        wall = time.perf_counter()
        with exclusive(writer) as state:
            print(f"{SHIM} lock {time.perf_counter() - wall:.6f}", file=sys.stderr, flush=True)
            yield state

    runner.catch_up = timed_catch_up  # type: ignore[attr-defined]  # the name the loop calls
    WarehouseWriter.exclusive = timed_exclusive  # type: ignore[method-assign,assignment]
    from journey.cli import main

    sys.argv = ["journey", "processor"]
    main()


def table(runs: list[Run], events: int) -> str:
    base = runs[0].cpu_s if runs else 0.0
    rows = [
        "| processors | wall | CPU-s (processors) | ev per CPU-s | CPU-s per 1k ev (vs first row) "
        "| broker CPU-s "
        "| peak RSS per processor | catch-up (runs; events, customers read; CPU-s) "
        "| commit-lock wait | batches, assignments | records read | events committed by each "
        "| events stored / distinct sent | load before; "
        "during mean, max |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        rss = ", ".join(f"{m:,.0f}" for m in r.peak_rss_mb)
        each = ", ".join(f"{e:,}" for e in r.events_each)
        stored = r.counts.get("events", 0)
        ok = "ok" if stored == events == r.counts.get("distinct event_id") else "WRONG"
        rows.append(
            f"| {r.processors} | {r.wall_s:.1f} s | {r.cpu_s:.1f} (start-up {r.start_cpu_s:.1f}) "
            f"| {events / r.cpu_s:,.0f} | {1000 * r.cpu_s / events:.3f} "
            f"({r.cpu_s / base:.2f}x) | {r.broker_cpu_s:.1f} "
            f"| {rss} MiB | {r.catchups}; {r.caught_events:,}, {r.caught_customers:,}; "
            f"{r.catchup_cpu_s:.1f} CPU-s, {r.catchup_wall_s:.1f} s | {r.lock_wait_s:.1f} s "
            f"| {r.batches}, {r.assignments} | {r.records_read:,} | {each} "
            f"| {stored:,} / {events:,} {ok} "
            f"| {r.load_before:.1f}; {r.load_mean:.1f}, {r.load_max:.1f} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--late", type=float, default=0.1, help="share of events up to 3 d late")
    parser.add_argument("--processors", default="1,2,4", help="comma-separated counts")
    parser.add_argument("--timeout-s", type=float, default=3600, help="per run")
    parser.add_argument("--batch-max-records", type=int,
                        help="JOURNEY_BATCH_MAX_RECORDS of the processors (unset: their default)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep", type=Path, help="keep broker, data and logs in this directory")
    parser.add_argument("--child-processor", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_processor:
        child_processor()
        return
    counts = [int(n) for n in args.processors.split(",")]
    root = args.keep or Path(tempfile.mkdtemp(prefix="journey-scale-out-"))
    root.mkdir(parents=True, exist_ok=True)
    topic = f"bench.scale-out.{os.getpid()}"
    runs: list[Run] = []
    with kafka_broker(root / "kafka") as bootstrap:
        began = time.perf_counter()
        distinct = write_backlog(bootstrap, topic, args.events, args.late)
        end = log_end(bootstrap, topic)
        print(f"{sum(end.values()):,} records ({distinct:,} distinct events) on {len(end)} "
              f"partitions in {time.perf_counter() - began:.0f} s; load "
              f"{os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOURNEY_")}
        env |= {"JOURNEY_KAFKA_BOOTSTRAP": bootstrap, "JOURNEY_TOPIC": topic,
                "JOURNEY_PARTITIONS": str(PARTITIONS)}
        if args.batch_max_records:
            env["JOURNEY_BATCH_MAX_RECORDS"] = str(args.batch_max_records)
        for n in counts:
            runs.append(run_processors(n, root, env, end, args.timeout_s,
                                       kafka_pid(root / "kafka")))
            print(table(runs, distinct).splitlines()[-1], file=sys.stderr, flush=True)
    first = runs[0].counts
    for r in runs[1:]:
        if r.counts != first:
            print(f"tables differ: {runs[0].processors} processors {first}, {r.processors} "
                  f"processors {r.counts}", file=sys.stderr)
    print(table(runs, distinct))
    print(f"tables: {', '.join(f'{r.processors}: {r.counts}' for r in runs)}")
    if args.json:
        args.json.write_text(json.dumps({"events": distinct, "partitions": PARTITIONS,
                                         "batch_max_records": args.batch_max_records,
                                         "runs": [asdict(r) for r in runs]}, indent=1))


if __name__ == "__main__":
    main()

"""Collector benchmark: a real `journey collector` process, real HTTP, the embedded log or Kafka.

Per log, one collector process, three measurements:
  * /v1/batch events/s: concurrent clients sending 100-event batches as fast as answered;
  * /v1/track sequential: one request at a time (the latency floor, no queueing);
  * /v1/track open loop: requests sent on a fixed schedule of --rate per second for --seconds,
    latency measured from each request's SCHEDULED send time, so time spent queueing (in the
    collector, or in a load generator that fell behind) is counted instead of hidden.
Then the log's record count must equal the events acknowledged.

    .venv/bin/python bench/bench_ingest.py [--rate 2000] [--seconds 10] [--kafka] [--no-embedded]

The load generator runs on the same machine as the collector (and the broker): say so with the
figures. The per-write-key rate limit is switched off (JOURNEY_RATE_LIMIT_PER_S=0): 2,000
requests/s from one key would otherwise be answered 429 by design.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a script, not an installed package

from bench.common import REPO, free_port, kafka_broker

WRITE_KEY = "bench-write-key"
AUTH = httpx.BasicAuth(WRITE_KEY, "")
PARTITIONS = 6


def event(i: int) -> dict[str, object]:
    """A realistic analytics.js track call."""
    return {
        "type": "track", "event": "Product Viewed", "messageId": str(uuid.uuid4()),
        "anonymousId": f"anon-{i % 997}", "userId": f"user-{i % 311}" if i % 3 == 0 else None,
        "properties": {"sku": f"SKU-{i}", "price": 19.99, "currency": "EUR"},
        "context": {"page": {"url": f"https://shop.example/p/{i}?utm_source=news&utm_medium=email",
                             "referrer": "https://www.google.com/"},
                    "userAgent": "Mozilla/5.0 (X11; Linux x86_64)", "locale": "en-GB"},
        "originalTimestamp": "2024-05-01T11:59:58.000Z", "sentAt": "2024-05-01T11:59:59.000Z",
    }


# --- closed-loop measurements (httpx) -------------------------------------------------------

async def batches(base: str, clients: int, requests: int) -> tuple[int, float]:
    """Events stored and seconds taken when `clients` send `requests` 100-event batches each."""
    async def client(n: int, http: httpx.AsyncClient) -> int:
        for r in range(requests):
            body = {"batch": [event(n * 100_000 + r * 100 + k) for k in range(100)]}
            response = await http.post(f"{base}/v1/batch", json=body, auth=AUTH)
            response.raise_for_status()
        return requests * 100

    async with httpx.AsyncClient(timeout=60) as http:
        started = time.perf_counter()
        sent = await asyncio.gather(*(client(n, http) for n in range(clients)))
        return sum(sent), time.perf_counter() - started


async def singles(base: str, count: int) -> list[float]:
    """Latency in ms of `count` sequential single-event /v1/track requests."""
    latencies: list[float] = []
    async with httpx.AsyncClient(timeout=60) as http:
        for i in range(count):
            started = time.perf_counter()
            response = await http.post(f"{base}/v1/track", json=event(i), auth=AUTH)
            response.raise_for_status()
            latencies.append((time.perf_counter() - started) * 1000)
    return latencies


# --- open-loop load (raw HTTP/1.1 keep-alive on asyncio streams: cheap enough for 2k/s) -------

Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass
class OpenLoop:
    """What an open-loop run saw; times in seconds of time.perf_counter (uvloop's loop.time()
    has millisecond steps and is cached per loop iteration)."""

    latencies: list[float] = field(default_factory=list)  # completion - scheduled, 2xx only
    late: list[float] = field(default_factory=list)  # dispatched - scheduled (generator behind)
    lag: list[float] = field(default_factory=list)  # request written - scheduled
    errors: dict[str, int] = field(default_factory=dict)
    started: float = 0.0
    last_due: float = 0.0
    finished: float = 0.0
    connections: int = 0


class Pool:
    """Keep-alive connections to 127.0.0.1:port, opened on demand, at most `limit` at once."""

    def __init__(self, port: int, limit: int) -> None:
        self.port, self.limit, self.opened = port, limit, 0
        # None is a free slot left by a closed connection: the next taker opens a new one.
        self.idle: asyncio.LifoQueue[Conn | None] = asyncio.LifoQueue()

    async def acquire(self) -> Conn:
        if not self.idle.empty():
            conn = self.idle.get_nowait()
        elif self.opened < self.limit:
            self.opened, conn = self.opened + 1, None
        else:
            conn = await self.idle.get()
        if conn is None:
            try:
                return await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                self.idle.put_nowait(None)
                raise
        return conn

    def release(self, conn: Conn, reusable: bool) -> None:
        if not reusable:
            conn[1].close()
        self.idle.put_nowait(conn if reusable else None)

    def close(self) -> None:
        while not self.idle.empty():
            conn = self.idle.get_nowait()
            if conn is not None:
                conn[1].close()


def track_requests(port: int, count: int, first: int) -> list[bytes]:
    """Ready-to-send POST /v1/track requests, each with a new messageId."""
    auth = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    head = (f"POST /v1/track HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Basic {auth}"
            "\r\nContent-Type: application/json\r\nContent-Length: ")
    out = []
    for i in range(first, first + count):
        body = orjson.dumps(event(i))
        out.append(f"{head}{len(body)}\r\n\r\n".encode() + body)
    return out


async def exchange(conn: Conn, request: bytes) -> tuple[int, bool]:
    """Send one request, read the whole answer: (status, connection reusable)."""
    reader, writer = conn
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").lower().split("\r\n")
    status = int(lines[0].split()[1])
    length, keep = 0, True
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name == "content-length":
            length = int(value)
        elif name == "connection" and "close" in value:
            keep = False
    await reader.readexactly(length)
    return status, keep


async def one(pool: Pool, request: bytes, due: float, run: OpenLoop) -> None:
    try:
        conn = await pool.acquire()
    except OSError as exc:
        run.errors[type(exc).__name__] = run.errors.get(type(exc).__name__, 0) + 1
        return
    run.lag.append(time.perf_counter() - due)
    try:
        status, keep = await asyncio.wait_for(exchange(conn, request), timeout=30)
    except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
        pool.release(conn, False)
        run.errors[type(exc).__name__] = run.errors.get(type(exc).__name__, 0) + 1
        return
    pool.release(conn, keep)
    if 200 <= status < 300:
        run.latencies.append(time.perf_counter() - due)
    else:
        run.errors[f"HTTP {status}"] = run.errors.get(f"HTTP {status}", 0) + 1


async def open_loop(port: int, requests: list[bytes], rate: float, limit: int) -> OpenLoop:
    """Send request i at start + i/rate whatever happened to the earlier ones."""
    pool, run = Pool(port, limit), OpenLoop()
    run.started = time.perf_counter() + 0.05
    tasks: list[asyncio.Task[None]] = []
    i = 0
    while i < len(requests):
        now = time.perf_counter()
        while i < len(requests) and run.started + i / rate <= now:
            run.late.append(now - (run.started + i / rate))
            tasks.append(asyncio.create_task(one(pool, requests[i], run.started + i / rate, run)))
            i += 1
        if i < len(requests):
            await asyncio.sleep(max(0.0, run.started + i / rate - time.perf_counter()))
    run.last_due = run.started + (len(requests) - 1) / rate
    await asyncio.gather(*tasks)
    run.finished, run.connections = time.perf_counter(), pool.opened
    pool.close()
    return run


# --- the collector process and the table ----------------------------------------------------

def collector_env(data_dir: Path, bootstrap: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOURNEY_")}
    env |= {"JOURNEY_DATA_DIR": str(data_dir), "JOURNEY_WRITE_KEYS": WRITE_KEY,
            "JOURNEY_PARTITIONS": str(PARTITIONS), "JOURNEY_RATE_LIMIT_PER_S": "0",
            "JOURNEY_TOPIC": f"bench.{uuid.uuid4().hex[:8]}"}
    return env | ({"JOURNEY_KAFKA_BOOTSTRAP": bootstrap} if bootstrap else {})


def stored(env: dict[str, str]) -> int:
    """Records in the collector's log (the proof that the 2xx answers were real)."""
    from journey.log.factory import open_consumer
    from journey.settings import CommonSettings

    log = open_consumer(CommonSettings(data_dir=Path(env["JOURNEY_DATA_DIR"]),
                                       kafka_bootstrap=env.get("JOURNEY_KAFKA_BOOTSTRAP"),
                                       topic=env["JOURNEY_TOPIC"], partitions=PARTITIONS))
    try:
        return sum(log.end_offsets().values())
    finally:
        log.close()


def wait_ready(base: str, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("the collector did not start")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a live process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def measure(name: str, bootstrap: str | None, args: argparse.Namespace) -> list[tuple[str, ...]]:
    """Every measurement against one `journey collector`: rows (log, measure, value, note)."""
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        env = collector_env(Path(tmp), bootstrap)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with open(Path(tmp) / "collector.log", "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "journey", "collector", "--port",
                                     str(port)], cwd=REPO, env=env, stdout=out, stderr=out)
        try:
            wait_ready(base, proc)
            batch_cpu = cpu_s(proc.pid)
            events, seconds = asyncio.run(batches(base, args.clients, args.requests))
            batch_cpu = cpu_s(proc.pid) - batch_cpu
            latencies = asyncio.run(singles(base, args.singles))
            warm = track_requests(port, 200, 10**9)  # 1 s at 200/s, not counted
            warmed = uvloop.run(open_loop(port, warm, 200, args.connections))
            runs: list[tuple[float, OpenLoop, float, float]] = []
            for k, rate in enumerate(args.rate):
                load = track_requests(port, int(rate * args.seconds), (k + 1) * 10**8)
                server_cpu, own_cpu = cpu_s(proc.pid), time.process_time()
                run = uvloop.run(open_loop(port, load, rate, args.connections))
                runs.append((rate, run, cpu_s(proc.pid) - server_cpu,
                             time.process_time() - own_cpu))
            if proc.poll() is not None:
                raise SystemExit(f"the collector exited with {proc.returncode}:\n"
                                 + (Path(tmp) / "collector.log").read_text()[-3000:])
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        in_log = stored(env)
    acked = events + len(latencies) + len(warmed.latencies)
    acked += sum(len(run.latencies) for _, run, _, _ in runs)
    seq = statistics.quantiles(latencies, n=100)
    rows: list[tuple[str, ...]] = [
        (name, "/v1/batch throughput", f"{events / seconds:,.0f} events/s",
         f"{args.clients} clients x {args.requests} x 100 events, {seconds:.2f} s"),
        (name, "/v1/batch collector CPU per event", f"{batch_cpu / events * 1e6:.0f} us",
         f"one collector process (one core) <= {events / max(batch_cpu, 1e-9):,.0f} events/s"),
        (name, "/v1/track sequential p50 / p99", f"{seq[49]:.1f} / {seq[98]:.1f} ms",
         f"{args.singles} requests, one at a time"),
    ]
    for rate, run, server_cpu, own_cpu in runs:
        rows += open_loop_rows(name, rate, run, server_cpu, own_cpu, args)
    rows.append((name, "records in log", f"{in_log:,}",
                 f"acknowledged {acked:,}" + ("" if in_log == acked else "  MISMATCH")))
    return rows


def p50_p99(values: list[float]) -> str:
    cuts = statistics.quantiles(values, n=100) if len(values) > 1 else [0.0] * 99
    return f"{ms(cuts[49])} / {ms(cuts[98])}"


def open_loop_rows(name: str, rate: float, run: OpenLoop, server_cpu: float, own_cpu: float,
                   args: argparse.Namespace) -> list[tuple[str, ...]]:
    """The table rows of one open-loop run."""
    n = len(run.late)
    span = run.finished - run.started
    errors = ", ".join(f"{k} x{v}" for k, v in sorted(run.errors.items())) or "none"
    at = f"@{rate:,.0f}/s"
    return [
        (name, f"{at} offered / achieved", f"{(n - 1) / (run.last_due - run.started):,.0f} / "
         f"{len(run.latencies) / span:,.0f} req/s",
         f"{n} requests scheduled over {args.seconds:g} s; achieved = 2xx / {span:.1f} s"),
        (name, f"{at} latency p50 / p99", p50_p99(run.latencies),
         f"from scheduled send; max {ms(max(run.latencies, default=0))}; errors: {errors}"),
        (name, f"{at} generator late p99 / max", f"{ms(statistics.quantiles(run.late, n=100)[98])}"
         f" / {ms(max(run.late))}", "dispatch - schedule: > a few ms = generator-bound"),
        (name, f"{at} waited for connection p50 / p99", p50_p99(run.lag),
         f"write - schedule; {run.connections} connections at most"),
        (name, f"{at} CPU per request collector / gen.",
         f"{server_cpu / n * 1000:.2f} / {own_cpu / n * 1000:.2f} ms",
         f"one collector process (one core) <= {n / max(server_cpu, 1e-9):,.0f} req/s"),
    ]


def main() -> None:
    """Start the collector on each log, measure, print a table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=25, help="batches per client")
    parser.add_argument("--singles", type=int, default=300)
    parser.add_argument("--rate", type=float, nargs="+", default=[2000.0],
                        help="open-loop requests/s (one run per rate, after a 1 s warm-up)")
    parser.add_argument("--seconds", type=float, default=10.0, help="open-loop duration")
    parser.add_argument("--connections", type=int, default=256, help="open-loop connection cap")
    parser.add_argument("--kafka", action="store_true", help="also run on a throw-away broker")
    parser.add_argument("--no-embedded", dest="embedded", action="store_false")
    args = parser.parse_args()
    rows: list[tuple[str, ...]] = []
    if args.embedded:
        rows += measure("embedded", None, args)
    if args.kafka:
        with tempfile.TemporaryDirectory(prefix="bench-kafka-") as kdir, \
                kafka_broker(Path(kdir)) as bootstrap:
            rows += measure("Kafka", bootstrap, args)
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} (load generator, "
          "collector and broker share them)")
    for row in rows:
        print("  ".join(f"{c:<{w}}" for c, w in zip(row, widths, strict=False)) + "  " + row[3])
    if any("MISMATCH" in r[3] for r in rows):
        raise SystemExit("the log does not hold every acknowledged event")


if __name__ == "__main__":
    main()

"""Collector benchmark: a real uvicorn + embedded log in a subprocess, real HTTP clients.

Measures events/s through /v1/batch (100-event requests from concurrent clients) and the
latency of single-event /v1/track requests. Run from the repository root:

    .venv/bin/python bench/bench_ingest.py [--clients 8] [--requests 25] [--singles 300]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # a script, not an installed package

WRITE_KEY = "bench-write-key"
AUTH = httpx.BasicAuth(WRITE_KEY, "")


def serve(port: int, data_dir: Path, partitions: int) -> None:
    """The collector process: the collector app on uvicorn, appending to an embedded log."""
    import uvicorn
    from pydantic import SecretStr

    from ingest.app import create_app
    from ingest.settings import IngestSettings
    from journey.log.embedded import EmbeddedLog

    settings = IngestSettings(data_dir=data_dir, write_keys=[SecretStr(WRITE_KEY)],
                              partitions=partitions)
    log = EmbeddedLog(settings.log_dir, settings.partitions)
    try:
        uvicorn.run(create_app(settings, log), host="127.0.0.1", port=port, log_level="warning")
    finally:
        log.close()


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


def stored(data_dir: Path, partitions: int) -> int:
    """Records in the embedded log (the proof that the 200s were real)."""
    from journey.log.embedded import EmbeddedLog

    log = EmbeddedLog(data_dir / "log", partitions)
    try:
        return sum(log.end_offsets().values())
    finally:
        log.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(base: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("collector did not start")


def main() -> None:
    """Start the collector, measure, print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=25, help="batches per client")
    parser.add_argument("--singles", type=int, default=300)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--serve", nargs=2, metavar=("PORT", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), Path(args.serve[1]), args.partitions)
        return
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(port), tmp,
                                   "--partitions", str(args.partitions)], cwd=REPO)
        try:
            wait_ready(base)
            events, seconds = asyncio.run(batches(base, args.clients, args.requests))
            latencies = asyncio.run(singles(base, args.singles))
        finally:
            server.terminate()
            server.wait(timeout=30)
        in_log = stored(Path(tmp), args.partitions)
    cuts = statistics.quantiles(latencies, n=100)
    rows = [
        ("batch throughput", f"{events / seconds:,.0f} events/s",
         f"{events} events, {args.clients} clients x {args.requests} x 100, {seconds:.2f} s"),
        ("/v1/track p50", f"{cuts[49]:.2f} ms", f"{args.singles} sequential requests"),
        ("/v1/track p99", f"{cuts[98]:.2f} ms", ""),
        ("records in log", f"{in_log}", f"expected {events + args.singles}"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>18}  {note}")
    if in_log != events + args.singles:
        raise SystemExit("the log does not hold every acknowledged event")


if __name__ == "__main__":
    main()

"""Append and poll throughput of both logs: 100-record appends of 200-byte values.

    .venv/bin/python bench/bench_log.py [--bootstrap HOST:PORT] [--records N]

Without --bootstrap it starts a throw-away Kafka broker with scripts/kafka.sh (and stops it).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script from anywhere: the package is not installed

with warnings.catch_warnings():  # kafka-python's schema loading warns on Python 3.11
    warnings.simplefilter("ignore", DeprecationWarning)
    from bench.common import kafka_broker
    from journey.log.base import LogConsumer, LogProducer
    from journey.log.embedded import EmbeddedLog
    from journey.log.kafka import KafkaLog, ensure_topic


def measure(
    producer: LogProducer, consumer: LogConsumer, records: int, batch: int, value_bytes: int
) -> tuple[float, float, float]:
    """(append records/s, mean append latency ms, poll records/s) for `records` records."""
    value = b"v" * value_bytes
    batches = [
        [(f"customer-{(start + i) % 997}".encode(), value) for i in range(batch)]
        for start in range(0, records, batch)
    ]
    started = time.perf_counter()
    for records_batch in batches:
        producer.append(records_batch)
    append_s = time.perf_counter() - started
    consumer.poll(1, 5.0)  # connect and fetch metadata outside the timed part
    consumer.seek(dict.fromkeys(consumer.partitions(), 0))
    read = 0
    started = time.perf_counter()
    while read < records:
        got = consumer.poll(1000, 5.0)
        if not got:
            raise RuntimeError(f"poll returned nothing after {read} of {records} records")
        read += len(got)
    poll_s = time.perf_counter() - started
    return records / append_s, append_s * 1000 / len(batches), records / poll_s


def run(
    name: str, opener: Callable[[], tuple[LogProducer, LogConsumer]], args: argparse.Namespace
) -> list[str]:
    producer, consumer = opener()
    try:
        producer.append([(b"warm-up", b"x")])  # connections and file creation are not measured
        consumer.poll(1, 5.0)
        append_rps, latency_ms, poll_rps = measure(
            producer, consumer, args.records, args.batch, args.value_bytes
        )
    finally:
        producer.close()
        consumer.close()
    return [name, f"{append_rps:,.0f}", f"{latency_ms:.2f}", f"{poll_rps:,.0f}"]


def main() -> None:
    """Run the benchmark and print one table row per backend."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", help="an existing Kafka (else one is started)")
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--value-bytes", type=int, default=200)
    parser.add_argument("--partitions", type=int, default=6)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-log-") as tmp:
        base = Path(tmp)

        def embedded() -> tuple[LogProducer, LogConsumer]:
            return EmbeddedLog(base / "log", args.partitions), EmbeddedLog(base / "log")

        rows.append(run("embedded (SQLite, synchronous=FULL)", embedded, args))

        def kafka(bootstrap: str) -> Callable[[], tuple[LogProducer, LogConsumer]]:
            def opener() -> tuple[LogProducer, LogConsumer]:
                topic = f"bench.{uuid.uuid4().hex[:8]}"
                ensure_topic(bootstrap, topic, args.partitions)
                return KafkaLog(bootstrap, topic), KafkaLog(bootstrap, topic)

            return opener

        if args.bootstrap:
            rows.append(run("kafka (acks=all)", kafka(args.bootstrap), args))
        else:
            with kafka_broker(base / "kafka") as bootstrap:
                rows.append(run("kafka 4.4.0 (acks=all, local broker)", kafka(bootstrap), args))

    table = Table(
        title=f"journey log: {args.records:,} records, {args.batch}-record appends, "
        f"{args.value_bytes}-byte values, {args.partitions} partitions"
    )
    for column in ("backend", "append records/s", "ms per append", "poll records/s"):
        table.add_column(column, justify="left" if column == "backend" else "right")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


if __name__ == "__main__":
    main()

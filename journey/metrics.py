"""The product's Prometheus series that more than one role records: one registry, one place.

Every process (`journey up`, `journey collector`, the processor) records into REGISTRY and its
/metrics renders it with `render`; README's "Metrics" section documents each series. Series are
declared here, not next to their callers, so that names, labels and buckets stay consistent
and a role can be split off without its metrics changing.
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

# Latency buckets from a fast local append (embedded log, sub-ms) to a slow Kafka ack (seconds).
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                   5.0, 10.0)

COLLECTOR_REQUESTS = Counter(
    "journey_collector_requests",
    "Collector requests by route (path template) and HTTP status answered.",
    ["route", "status"], registry=REGISTRY,
)
COLLECTOR_EVENTS = Counter(
    "journey_collector_events",
    "Events the collector accepted (appended to the log) or rejected (dead-lettered).",
    ["outcome"], registry=REGISTRY,
)
LOG_APPEND_SECONDS = Histogram(
    "journey_collector_log_append_seconds",
    "Time for the event log to durably accept one request's events (Kafka ack or fsync).",
    buckets=LATENCY_BUCKETS, registry=REGISTRY,
)


def render() -> bytes:
    """REGISTRY in the Prometheus text format."""
    return generate_latest(REGISTRY)

# The processor's series live in their own registry: under `journey up` the processor is a child
# process, so it writes them to a textfile (PROCESSOR_TEXTFILE under the data dir) that the
# serving process appends to its /metrics; a separate registry keeps the parent from rendering
# an empty copy of the same names beside the child's.
PROCESSOR_REGISTRY = CollectorRegistry(auto_describe=True)
PROCESSOR_TEXTFILE = "metrics/processor.prom"
BATCH_SIZE_BUCKETS = (1, 10, 100, 1_000, 10_000, 50_000, 100_000, 500_000)
BATCH_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                         60.0)

PROCESSOR_RECORDS = Counter(
    "journey_processor_records", "Log records the processor consumed (including duplicates).",
    registry=PROCESSOR_REGISTRY)
PROCESSOR_EVENTS = Counter(
    "journey_processor_new_events",
    "Events stored for the first time (records minus duplicates and dead letters).",
    registry=PROCESSOR_REGISTRY)
PROCESSOR_DEAD_LETTERS = Counter(
    "journey_processor_dead_letters", "Records the processor could not decode (dead-lettered).",
    registry=PROCESSOR_REGISTRY)
PROCESSOR_EXTENDED = Counter(
    "journey_processor_customers_extended",
    "Customers whose derivation was extended in place by in-order events.",
    registry=PROCESSOR_REGISTRY)
PROCESSOR_REDERIVED = Counter(
    "journey_processor_components_rederived",
    "Identity components re-derived from their history (late events, merges).",
    registry=PROCESSOR_REGISTRY)
PROCESSOR_BATCH_RECORDS = Histogram(
    "journey_processor_batch_records", "Records per committed micro-batch.",
    buckets=BATCH_SIZE_BUCKETS, registry=PROCESSOR_REGISTRY)
PROCESSOR_BATCH_SECONDS = Histogram(
    "journey_processor_batch_seconds", "Time of one micro-batch, poll to commit.",
    buckets=BATCH_SECONDS_BUCKETS, registry=PROCESSOR_REGISTRY)
PROCESSOR_COMMIT_SECONDS = Histogram(
    "journey_processor_commit_seconds",
    "Time of one warehouse commit (data and offsets in one transaction), retries included.",
    buckets=BATCH_SECONDS_BUCKETS, registry=PROCESSOR_REGISTRY)
PROCESSOR_CUSTOMERS = Gauge(
    "journey_processor_customers", "Customers held in the processor's state.",
    registry=PROCESSOR_REGISTRY)
PROCESSOR_LAG = Gauge(
    "journey_processor_lag_records",
    "Records not yet committed per log partition (log end offset minus committed offset).",
    ["partition"], registry=PROCESSOR_REGISTRY)
PROCESSOR_LAST_COMMIT = Gauge(
    "journey_processor_last_commit_timestamp_seconds",
    "Unix time of the processor's last warehouse commit (0: none since start).",
    registry=PROCESSOR_REGISTRY)
PROCESSOR_REBUILDS = Counter(
    "journey_processor_rebuilds",
    "Re-derivations of every derived table done by the running processor (model changes).",
    registry=PROCESSOR_REGISTRY)


def write_textfile(data_dir: Path) -> None:
    """Write the processor's series to its textfile, atomically (a scrape never reads half)."""
    path = data_dir / PROCESSOR_TEXTFILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(generate_latest(PROCESSOR_REGISTRY))
    os.replace(tmp, path)


def read_textfile(data_dir: Path) -> bytes:
    """The processor's series as last written under data_dir (empty when none was written)."""
    try:
        return (data_dir / PROCESSOR_TEXTFILE).read_bytes()
    except FileNotFoundError:
        return b""

"""The product's Prometheus series that more than one role records: one registry, one place.

Every process (`journey up`, `journey collector`, the processor) records into REGISTRY and its
/metrics renders it with `render`; README's "Metrics" section documents each series. Series are
declared here, not next to their callers, so that names, labels and buckets stay consistent
and a role can be split off without its metrics changing.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

log = logging.getLogger("journey.metrics")

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
# an empty copy of the same names beside the child's. Several processors share a data directory
# (README, "Scaling out"): each writes its own file and labels every series with its member id
# (`processor`), so that their series never collide.
PROCESSOR_REGISTRY = CollectorRegistry(auto_describe=True)
PROCESSOR_TEXTFILE = "metrics/processor-{member}.prom"
# A processor that stopped or was killed leaves its file behind: /metrics stops showing its
# series after this long (a live one rewrites its file every second).
TEXTFILE_FRESH_S = 60.0
TEXTFILE_FORGET_S = 3600.0  # and a live processor deletes such a file after this long
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
    "Records not yet committed per log partition this processor owns (log end offset minus "
    "committed offset).",
    ["partition"], registry=PROCESSOR_REGISTRY)
PROCESSOR_PARTITIONS = Gauge(
    "journey_processor_partitions_owned",
    "Log partitions this processor owns now (all of them on the embedded log; on Kafka those "
    "its consumer group assigned to it).",
    registry=PROCESSOR_REGISTRY)
PROCESSOR_LAST_COMMIT = Gauge(
    "journey_processor_last_commit_timestamp_seconds",
    "Unix time of the processor's last warehouse commit (0: none since start).",
    registry=PROCESSOR_REGISTRY)
PROCESSOR_REBUILDS = Counter(
    "journey_processor_rebuilds",
    "Re-derivations of every derived table done by the running processor (model changes).",
    registry=PROCESSOR_REGISTRY)


# The API's snapshot series: in the API's process only (the collector alone renders REGISTRY).
API_REGISTRY = CollectorRegistry(auto_describe=True)
API_SNAPSHOT_SECONDS = Histogram(
    "journey_api_snapshot_load_seconds",
    "Time to serve a new warehouse snapshot: the served one moved by the customers that changed "
    "(how=advanced) or built whole (how=built); the dashboard's warm-up not included.",
    ["how"], buckets=BATCH_SECONDS_BUCKETS, registry=API_REGISTRY)
API_SNAPSHOT_DELAY = Histogram(
    "journey_api_snapshot_delay_seconds",
    "Time from a processor's commit (its committed_at) to the API serving that snapshot.",
    buckets=BATCH_SECONDS_BUCKETS, registry=API_REGISTRY)


class Labelled(Collector):
    """Another registry's series with constant labels added (this process's member id)."""

    def __init__(self, inner: CollectorRegistry, labels: dict[str, str]) -> None:
        self._inner = inner
        self._labels = labels

    def collect(self) -> Iterator[Metric]:
        for family in self._inner.collect():
            out = Metric(family.name, family.documentation, family.type, family.unit)
            out.samples = [s._replace(labels={**self._labels, **s.labels})
                           for s in family.samples]
            yield out


def processor_registry(member: str) -> CollectorRegistry:
    """The processor's series, each labelled `processor=<member>`, as a registry to serve."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Labelled(PROCESSOR_REGISTRY, {"processor": member}))
    return registry


def textfile(data_dir: Path, member: str) -> Path:
    """The textfile of one processor under data_dir."""
    return data_dir / PROCESSOR_TEXTFILE.format(member=member)


def write_textfile(data_dir: Path, member: str) -> None:
    """Write this processor's series to its textfile, atomically (a scrape never reads half)."""
    path = textfile(data_dir, member)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(generate_latest(processor_registry(member)))
    os.replace(tmp, path)
    now = time.time()
    every = textfile(data_dir, "*")
    for old in every.parent.glob(every.name):
        try:
            if now - old.stat().st_mtime > TEXTFILE_FORGET_S:
                old.unlink()
        except FileNotFoundError:  # another processor deleted it first
            pass


def remove_textfile(data_dir: Path, member: str) -> None:
    """Delete a processor's textfile (its clean stop: its series end with it)."""
    textfile(data_dir, member).unlink(missing_ok=True)


def read_textfile(data_dir: Path, now: float | None = None) -> bytes:
    """The series of every processor that wrote its textfile under data_dir in the last
    TEXTFILE_FRESH_S, as one exposition (empty when none did)."""
    now = time.time() if now is None else now
    families: dict[str, Metric] = {}
    every = textfile(data_dir, "*")
    for path in sorted(every.parent.glob(every.name)):
        try:
            if now - path.stat().st_mtime > TEXTFILE_FRESH_S:
                continue
            text = path.read_text()
            parsed = list(text_string_to_metric_families(text))
        except FileNotFoundError:  # that processor stopped meanwhile
            continue
        except (OSError, ValueError) as exc:
            log.warning("skipping the processor metrics file %s: %s", path, exc)
            continue
        _merge(families, parsed)
    if not families:
        return b""
    # One HELP and TYPE per name: the text format refuses a name declared twice.
    return generate_latest(_Families(families.values()))


def _merge(into: dict[str, Metric], parsed: Iterable[Metric]) -> None:
    for family in parsed:
        known = into.setdefault(family.name, Metric(family.name, family.documentation,
                                                    family.type, family.unit))
        known.samples.extend(family.samples)


class _Families(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)

"""The product's Prometheus series that more than one role records: one registry, one place.

Every process (`journey up`, `journey collector`, the processor) records into REGISTRY and its
/metrics renders it with `render`; README's "Metrics" section documents each series. Series are
declared here, not next to their callers, so that names, labels and buckets stay consistent
and a role can be split off without its metrics changing.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

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

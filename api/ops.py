"""Operations endpoints: /healthz (alive), /readyz (a snapshot is loaded), /metrics (Prometheus)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from api.model_version import model_versions
from api.store import SnapshotStore
from journey import metrics as product_metrics

# Request metrics are process-wide: every api_router records into this one registry.
REQUESTS_REGISTRY = CollectorRegistry()
REQUESTS = Counter(
    "journey_api_requests", "API requests by endpoint and HTTP status.",
    ["endpoint", "status"], registry=REQUESTS_REGISTRY,
)
LATENCY = Histogram(
    "journey_api_request_seconds", "API request latency by endpoint.", ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0),
    registry=REQUESTS_REGISTRY,
)


class SnapshotCollector(Collector):
    """The loaded snapshot's version, how long a newer one has waited to be served and how old
    the watermark is, read at scrape time."""

    def __init__(self, store: SnapshotStore) -> None:
        self._store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        bound = self._store.current()
        version = GaugeMetricFamily(
            "journey_api_snapshot_version", "Warehouse snapshot version served (-1: none yet)."
        )
        version.add_metric([], -1 if bound is None else bound.version)
        yield version
        pending = GaugeMetricFamily(
            "journey_api_snapshot_pending_seconds",
            "Seconds since the API found a newer snapshot it does not serve yet (0: none). "
            "Seconds under a steady stream; alert when it keeps growing.",
        )
        pending.add_metric([], self._store.pending_s)
        yield pending
        if bound is not None and bound.watermark is not None:
            age = GaugeMetricFamily(
                "journey_api_watermark_age_seconds",
                "Seconds between now and the watermark (latest event time) of the snapshot.",
            )
            age.add_metric([], (self._store.clock() - bound.watermark).total_seconds())
            yield age


def ops_router(store: SnapshotStore, data_dir: Path | None = None) -> APIRouter:
    """GET /healthz, /readyz and /metrics (no token: probes and scrapers call them).

    With data_dir, /metrics also carries the processor's series from its textfile there.
    """
    router = APIRouter()
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(store))

    @router.get("/healthz")
    def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @router.get("/readyz")
    def readyz() -> JSONResponse:
        bound = store.current()
        if bound is None:
            return JSONResponse({"status": "waiting for the first warehouse snapshot"}, 503)
        with store.cursor() as (served, cur):
            try:
                versions = store.cached(served.version, "readyz-models",
                                        lambda: model_versions(cur))
            except duckdb.CatalogException:  # a snapshot from before the models table existed
                versions = {}
        return JSONResponse({"status": "ready", "version": served.version, "models": versions})

    @router.get("/metrics")
    def metrics() -> Response:
        # The collector's series too: under `journey up` it shares this process.
        body = (generate_latest(REQUESTS_REGISTRY) + generate_latest(registry)
                + generate_latest(product_metrics.API_REGISTRY) + product_metrics.render())
        if data_dir is not None:  # the processor runs in another process (README, Metrics)
            body += product_metrics.read_textfile(data_dir)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return router

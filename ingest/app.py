"""A collector-only process: the collector router on its own FastAPI app. Wiring only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST

from ingest.import_routes import deadletter_router, import_router
from ingest.ratelimit import RateLimiter
from ingest.routes import collector_router
from ingest.settings import IngestSettings
from ingest.webhooks import webhook_router
from journey import metrics
from journey.log.base import LogProducer


def utc_now() -> datetime:
    """The collector clock: aware UTC now."""
    return datetime.now(UTC)


def create_app(settings: IngestSettings, producer: LogProducer,
               clock: Callable[[], datetime] = utc_now) -> FastAPI:
    """The collector app; the caller owns (and closes) the producer."""
    app = FastAPI(title="journey collector", docs_url=None, redoc_url=None)
    limiter = RateLimiter.from_settings(settings)  # one bucket per write key across endpoints
    app.include_router(collector_router(settings, producer, clock, limiter))
    app.include_router(webhook_router(settings, producer, clock, limiter))
    app.include_router(import_router(settings, producer, clock, limiter))
    app.include_router(deadletter_router(settings, producer, clock, settings.api_tokens, limiter))

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", include_in_schema=False)
    def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return app

"""A collector-only process: the collector router on its own FastAPI app. Wiring only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import FastAPI

from ingest.routes import collector_router
from ingest.settings import IngestSettings
from journey.log.base import LogProducer


def utc_now() -> datetime:
    """The collector clock: aware UTC now."""
    return datetime.now(UTC)


def create_app(settings: IngestSettings, producer: LogProducer,
               clock: Callable[[], datetime] = utc_now) -> FastAPI:
    """The collector app; the caller owns (and closes) the producer."""
    app = FastAPI(title="journey collector", docs_url=None, redoc_url=None)
    app.include_router(collector_router(settings, producer, clock))

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app

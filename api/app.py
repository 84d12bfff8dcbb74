"""An API-only process: `python -m api.app` serves the analytics API and ops endpoints."""

from __future__ import annotations

from datetime import UTC, datetime

import uvicorn
from fastapi import FastAPI

from api.ops import ops_router
from api.routes import api_router
from api.settings import ApiSettings
from api.store import SnapshotStore
from journey.logsafe import install, private_files


def create_app(settings: ApiSettings, store: SnapshotStore) -> FastAPI:
    """A FastAPI app with the analytics and ops routers."""
    app = FastAPI(title="journey analytics API")
    app.include_router(api_router(settings, store))
    app.include_router(ops_router(store))
    return app


def main() -> None:
    """Build settings from JOURNEY_* and serve on settings.host:settings.port."""
    from warehouse.reader import WarehouseReader  # the API process reads the local warehouse

    settings = ApiSettings()
    store = SnapshotStore(
        WarehouseReader(settings.warehouse_dir, settings.catalog_url),
        lambda: datetime.now(UTC),
        refresh_interval_s=settings.refresh_interval_s,
        cache_entries=settings.cache_entries,
        background=True,
    )
    store.follow()
    private_files()
    config = uvicorn.Config(create_app(settings, store), host=settings.host, port=settings.port)
    install()  # redact ?key= from the access log, once uvicorn configured its loggers
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()

"""`journey up`: collector, API and dashboard on one address, the processor in a child process.

The processor runs in its own process so that its CPU work never stalls HTTP answers (two cores
are common), and a supervisor restarts it if it dies.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from fastapi import FastAPI

from api import openapi_spec
from api.dashboard import dashboard_router
from api.docs import install_docs
from api.ops import ops_router
from api.query import query_router
from api.routes import api_router
from api.settings import ApiSettings
from api.store import SnapshotStore
from ingest.import_routes import deadletter_router, import_router
from ingest.ratelimit import RateLimiter
from ingest.routes import collector_router
from ingest.settings import IngestSettings
from ingest.snippet import snippet_router
from ingest.webhooks import webhook_router
from journey.log.base import LogProducer
from warehouse.errors import DAMAGED_EXIT_STATUS, REPAIR_COMMAND
from warehouse.reader import WarehouseReader

log = logging.getLogger("journey.server")
PR_SET_PDEATHSIG = 1


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(ingest: IngestSettings, api: ApiSettings, producer: LogProducer) -> FastAPI:
    """One ASGI app serving the collector, the analytics API and the dashboard."""
    app = FastAPI(title="journey", version="0.1.0", docs_url=None, redoc_url=None)
    install_docs(app)
    openapi_spec.install(app)
    store = api_store(api)
    limiter = RateLimiter.from_settings(ingest)  # one bucket per write key across endpoints
    app.include_router(collector_router(ingest, producer, utc_now, limiter))
    app.include_router(webhook_router(ingest, producer, utc_now, limiter))
    app.include_router(import_router(ingest, producer, utc_now, limiter))
    app.include_router(deadletter_router(ingest, producer, utc_now, api.api_tokens, limiter))
    app.include_router(snippet_router())
    app.include_router(api_router(api, store))
    app.include_router(query_router(api, store))
    app.include_router(ops_router(store, api.data_dir))
    app.include_router(dashboard_router())
    return app


def api_store(api: ApiSettings) -> SnapshotStore:
    """The API's view of the warehouse under api.data_dir, loading its first snapshot now (in the
    background) rather than inside the first request, and every newer one as it is committed."""
    store = SnapshotStore(
        WarehouseReader(api.warehouse_dir, api.catalog_url),
        utc_now,
        refresh_interval_s=api.refresh_interval_s,
        cache_entries=api.cache_entries,
        background=True,  # keep answering from the old snapshot while a new one loads
    )
    store.follow()
    return store


def create_api_app(api: ApiSettings) -> FastAPI:
    """An API-only app: analytics API, ops endpoints and the dashboard."""
    app = FastAPI(title="journey analytics API", version="0.1.0", docs_url=None, redoc_url=None)
    install_docs(app)
    openapi_spec.install(app)
    store = api_store(api)
    app.include_router(api_router(api, store))
    app.include_router(query_router(api, store))
    app.include_router(ops_router(store, api.data_dir))
    app.include_router(dashboard_router())
    return app


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the parent dies, even by SIGKILL (Linux), so no processor
    outlives the `journey up` that started it."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: the supervisor's stop() still ends the child on a clean exit


class ProcessorSupervisor:
    """Keeps one `journey processor` child running until stopped."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = dict(env)
        self._child: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._watch, name="processor-supervisor", daemon=True
        )

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child else None

    def start(self) -> None:
        self._spawn()
        self._thread.start()

    def _spawn(self) -> None:
        cmd = [sys.executable, "-m", "journey", "processor"]
        self._child = subprocess.Popen(
            cmd, env={**os.environ, **self._env}, preexec_fn=_die_with_parent
        )

    def _watch(self) -> None:
        while not self._stopping.wait(0.5):
            child = self._child
            if child is not None and child.poll() == DAMAGED_EXIT_STATUS:
                log.error("the processor stopped on a damaged store (its error says which); "
                          "not restarting it: stop journey, run `%s`", REPAIR_COMMAND)
                self._child = None
                continue
            if child is not None and child.poll() is not None:
                log.warning("processor exited with %s; restarting", child.returncode)
                time.sleep(1.0)
                if not self._stopping.is_set():
                    self._spawn()

    def stop(self) -> None:
        self._stopping.set()
        child = self._child
        if child is not None and child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

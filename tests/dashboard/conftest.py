"""Dashboard fixtures: a real warehouse built from the demo data by the real pipeline core, the
real API and dashboard routers on uvicorn, and headless Debian chromium driven by playwright."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import Browser, ConsoleMessage, Error, Page
from pydantic import SecretStr

from api.dashboard import dashboard_router
from api.ops import ops_router
from api.routes import api_router
from api.settings import ApiSettings
from api.store import SnapshotStore
from ingest.normalize import normalize
from journey.demo import generate
from journey.facts import Changes
from journey.schema import Event
from processor.derive import CoreConfig, derive
from processor.models_table import model_rows
from processor.stages.model import load_models
from warehouse.reader import WarehouseReader
from warehouse.settings import WarehouseSettings
from warehouse.tables import DERIVED_ROWS
from warehouse.writer import WarehouseWriter

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
TOKEN = "dashboard-test-token"
MODELS = ("default", "aida")
DEMO_CUSTOMERS = 120


def demo_events(customers: int = DEMO_CUSTOMERS) -> list[Event]:
    """The demo generator's messages as canonical events, received a second after being sent."""
    events = []
    for message in generate(customers=customers, seed=7, days=120):
        sent = datetime.fromisoformat(message["timestamp"].replace("Z", "+00:00"))
        events.append(normalize(message, sent.astimezone(UTC) + timedelta(seconds=1)))
    return events


def commit(writer: WarehouseWriter, events: list[Event], first_offset: int,
           config: CoreConfig, before: frozenset[str] = frozenset()) -> frozenset[str]:
    """Derive every customer of `events` and commit them with the new events, as the processor
    does (each customer's rows are deleted by customer_id, then inserted again; `before` are the
    ids committed last time, since a customer's id changes when it gets a user_id); the ids."""
    changes = Changes()
    facts = derive(events, config)
    for f in facts:
        changes.add_facts(f)
    customers = frozenset(f.customer.customer_id for f in facts)
    for table in DERIVED_ROWS:
        changes.delete(table, "customer_id", customers | before)
    fresh = [(e, 0, first_offset + i) for i, e in enumerate(events[first_offset:])]
    writer.commit(fresh, changes, {0: len(events)}, max(e.timestamp for e in events),
                  list(model_rows(config.models)))
    return customers


@dataclass
class Served:
    """A running app: its base URL, the warehouse writer behind it and the events committed."""

    url: str
    writer: WarehouseWriter
    config: CoreConfig
    events: list[Event] = field(default_factory=list)
    token: str = TOKEN
    customers: frozenset[str] = frozenset()

    def api(self, path: str, **params: str) -> Any:
        """GET an API path with the token, as the page does; the JSON answer."""
        resp = httpx.get(self.url + path, params=params,
                         headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        resp.raise_for_status()
        return resp.json()

    def add(self, events: list[Event]) -> None:
        """Commit more events: a new warehouse version the page must pick up."""
        start = len(self.events)
        self.events = self.events + events
        self.customers = commit(self.writer, self.events, start, self.config, self.customers)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run app on uvicorn in a thread on a free 127.0.0.1 port until the generator is closed."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start", pytrace=False)
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def build_app(data_dir: Path) -> FastAPI:
    """The dashboard and the real API over the warehouse under data_dir, wired as `journey up`."""
    settings = ApiSettings(data_dir=data_dir, api_tokens=[SecretStr(TOKEN)],
                           refresh_interval_s=0.0)
    store = SnapshotStore(WarehouseReader(settings.warehouse_dir), lambda: datetime.now(UTC),
                          refresh_interval_s=0.0)
    app = FastAPI(title="journey dashboard test")
    app.include_router(api_router(settings, store))
    app.include_router(ops_router(store))
    app.include_router(dashboard_router())
    return app


@contextmanager
def serving(data_dir: Path, events: list[Event]) -> Iterator[Served]:
    """Events through derive -> warehouse writer under data_dir, served by the real API."""
    config = CoreConfig(models=load_models(MODELS))
    writer = WarehouseWriter(WarehouseSettings(data_dir=data_dir, grace_period_s=0.0))
    writer.open()
    try:
        with serve(build_app(data_dir)) as url:
            served = Served(url, writer, config)
            served.add(events)
            yield served
    finally:
        writer.close()


@pytest.fixture(scope="session")
def all_events() -> list[Event]:
    return demo_events()


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory, all_events: list[Event]) -> Iterator[Served]:
    """The whole demo data set (normalised by the collector's code), served once per session."""
    with serving(tmp_path_factory.mktemp("dashboard-data"), all_events) as served:
        yield served


@pytest.fixture
def growing(tmp_path: Path, all_events: list[Event]) -> Iterator[tuple[Served, list[Event]]]:
    """A server holding the first 80% of the demo events by time, and the rest to add later."""
    ordered = sorted(all_events, key=Event.order_key)
    cut = len(ordered) * 8 // 10
    with serving(tmp_path, ordered[:cut]) as served:
        yield served, ordered[cut:]


@dataclass
class Console:
    """Console errors and uncaught page errors seen by one page."""

    errors: list[str] = field(default_factory=list)

    def on_console(self, msg: ConsoleMessage) -> None:
        if msg.type == "error":
            self.errors.append(f"console: {msg.text} at {msg.location}")

    def on_pageerror(self, exc: Error) -> None:
        self.errors.append(f"pageerror: {exc}")


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def page(browser: Browser, console: Console) -> Iterator[Page]:
    """A fresh 1440x900 page (own context: empty localStorage) that fails the test on any console
    error or uncaught exception."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.on("console", console.on_console)
    page.on("pageerror", console.on_pageerror)
    yield page
    context.close()
    assert console.errors == [], "\n".join(console.errors)


class Screenshots:
    """Saves PNGs under test-artifacts/dashboard/ for people to look at."""

    def __call__(self, page: Page, name: str, full_page: bool = True) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path


@pytest.fixture
def screenshot() -> Screenshots:
    return Screenshots()

"""Browser fixtures: headless Debian chromium driven by playwright, and a real collector on uvicorn.

The test app is the collector router + the snippet router + the test pages, all on one origin,
so the pages post to /v1/batch exactly as a site does that serves the collector on its own host.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from playwright.sync_api import Browser
from pydantic import SecretStr

from ingest.app import utc_now
from ingest.routes import collector_router
from ingest.settings import IngestSettings
from ingest.snippet import snippet_router
from journey.log.embedded import EmbeddedLog

from .harness import PAGES, PARTITIONS, WRITE_KEY, Collector, FlakyProducer, Tab

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"


def _test_app(settings: IngestSettings, producer: FlakyProducer) -> FastAPI:
    app = FastAPI()
    app.include_router(collector_router(settings, producer, utc_now))
    app.include_router(snippet_router())
    app.mount("/", StaticFiles(directory=PAGES, html=True), name="pages")
    return app


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    """A real uvicorn on a free 127.0.0.1 port in a background thread."""
    settings = IngestSettings(
        data_dir=tmp_path, partitions=PARTITIONS, write_keys=[SecretStr(WRITE_KEY)]
    )
    producer = FlakyProducer(EmbeddedLog(settings.log_dir, partitions=PARTITIONS))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        _test_app(settings, producer), log_level="warning", lifespan="off", loop="asyncio"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the test collector did not start")
        time.sleep(0.02)
    yield Collector(url=f"http://127.0.0.1:{port}", log_dir=settings.log_dir, producer=producer)
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()
    producer.close()


@pytest.fixture
def tab(
    browser: Browser, collector: Collector, request: pytest.FixtureRequest
) -> Iterator[Tab]:
    """A page on the collector's origin; it fails the test on any unexpected console error."""
    result = Tab(context=browser.new_context(base_url=collector.url))
    yield result
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = result.page
    if not page.is_closed() and page.url.startswith("http"):
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    result.context.close()
    assert result.unexpected_errors() == [], "the pages logged errors"

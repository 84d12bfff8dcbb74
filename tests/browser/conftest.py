"""Browser fixtures: headless Debian chromium driven by playwright, and a real collector on uvicorn.

The test app is the collector router + the snippet router + the test pages, all on one origin,
so the pages post to /v1/batch exactly as a site does that serves the collector on its own host.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from playwright.sync_api import Browser, ConsoleMessage, Error, Page, sync_playwright
from pydantic import SecretStr

from ingest.app import utc_now
from ingest.routes import collector_router
from ingest.settings import IngestSettings
from ingest.snippet import snippet_router
from journey.errors import RetryableError
from journey.log.embedded import EmbeddedLog
from journey.schema import Event

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
PAGES = Path(__file__).parent / "pages"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
WRITE_KEY = "browser-test-key"
PARTITIONS = 2


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless chromium for the session; a missing browser is a failure, never a skip."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-browser.sh", pytrace=False)
    with sync_playwright() as playwright:
        # launch() gives every run a fresh temporary user-data-dir of its own.
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


class FlakyProducer:
    """The real embedded log, refusing the next `failures` appends as a log outage would."""

    def __init__(self, log: EmbeddedLog) -> None:
        self.log = log
        self.failures = 0
        self.refused = 0
        self._lock = threading.Lock()

    def append(self, records: Sequence[tuple[bytes, bytes]]) -> None:
        """Append to the log, unless an outage was scheduled: then raise RetryableError."""
        with self._lock:
            if self.failures > 0:
                self.failures -= 1
                self.refused += 1
                raise RetryableError("log unavailable (scheduled by the test)", records=len(records))
        self.log.append(records)

    def close(self) -> None:
        self.log.close()


@dataclass
class Collector:
    """A collector serving the test pages on http://127.0.0.1:port, over a fresh embedded log."""

    url: str
    log_dir: Path
    producer: FlakyProducer

    def events(self) -> list[Event]:
        """Every event in the log so far, in log order per partition."""
        consumer = EmbeddedLog(self.log_dir, partitions=PARTITIONS)
        try:
            records = []
            while batch := consumer.poll(1000, 0.0):
                records.extend(batch)
        finally:
            consumer.close()
        return [Event.from_json(r.value) for r in records]

    def wait_for(self, done: Callable[[list[Event]], bool], timeout_s: float = 15.0) -> list[Event]:
        """Poll the log until `done(events)` holds; fail with what arrived when it never does."""
        deadline = time.monotonic() + timeout_s
        while True:
            events = self.events()
            if done(events):
                return events
            if time.monotonic() > deadline:
                names = [(e.type, e.event) for e in events]
                pytest.fail(f"events did not arrive within {timeout_s}s; the log has {names}")
            time.sleep(0.1)


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


@dataclass
class Tab:
    """A page in a fresh browser context, with every console error and uncaught exception."""

    page: Page
    errors: list[str]
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def allow_console(self, pattern: str) -> None:
        """Expect browser-logged errors matching pattern (e.g. the failed request of a 503)."""
        self.allowed.append(re.compile(pattern))

    def unexpected_errors(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]


@pytest.fixture
def tab(
    browser: Browser, collector: Collector, request: pytest.FixtureRequest
) -> Iterator[Tab]:
    """A page on the collector's origin; it fails the test on any unexpected console error."""
    context = browser.new_context(base_url=collector.url)
    page = context.new_page()
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"console: {message.text} ({message.location.get('url')})")

    def on_page_error(error: Error) -> None:
        errors.append(f"uncaught: {error.message}")

    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    result = Tab(page=page, errors=errors)
    yield result
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    if not page.is_closed() and page.url.startswith("http"):
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert result.unexpected_errors() == [], "the pages logged errors"

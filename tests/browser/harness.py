"""What the browser tests share: the test collector's handle, a failing producer, a browser tab."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, Error, Page

from journey.errors import RetryableError
from journey.log.embedded import EmbeddedLog
from journey.schema import Event

PAGES = Path(__file__).parent / "pages"
WRITE_KEY = "browser-test-key"
PARTITIONS = 2


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
                raise RetryableError("log unavailable (set by the test)", records=len(records))
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


@dataclass
class Tab:
    """Pages of one fresh browser context, with every console error and uncaught exception."""

    context: BrowserContext
    errors: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)
    page: Page = field(init=False)

    def __post_init__(self) -> None:
        self.open()

    def open(self) -> Page:
        """A new page (tab) sharing the context's storage and cookies; it becomes `page`."""
        self.page = self.context.new_page()
        self.page.on("console", self._on_console)
        self.page.on("pageerror", self._on_page_error)
        return self.page

    def allow_console(self, pattern: str) -> None:
        """Expect browser-logged errors matching pattern (e.g. the failed request of a 503)."""
        self.allowed.append(re.compile(pattern))

    def unexpected_errors(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text} ({message.location.get('url')})")

    def _on_page_error(self, error: Error) -> None:
        self.errors.append(f"uncaught: {error.message}")

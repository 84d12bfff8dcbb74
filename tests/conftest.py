"""Fixtures shared by every test package: the Kafka broker and the PostgreSQL server (once per
session each), the log backends."""

from __future__ import annotations

import gc
import logging
import socket
import subprocess
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

# kafka-python loads its protocol schemas with importlib.resources.read_text, deprecated on
# Python 3.11 (and un-deprecated in 3.13); pytest turns warnings into errors, so import it quietly.
_KAFKA_WARNING = "ignore:(read|open)_text is deprecated:DeprecationWarning"
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "(read|open)_text is deprecated", DeprecationWarning)
    import kafka  # noqa: F401

from journey.log.base import LogConsumer, LogProducer  # noqa: E402
from journey.log.factory import open_consumer, open_producer  # noqa: E402
from journey.settings import CommonSettings  # noqa: E402
from tests.pg import postgres  # noqa: E402, F401  (the session's PostgreSQL, a fixture)

REPO = Path(__file__).resolve().parent.parent
KAFKA_SH = REPO / "scripts" / "kafka.sh"


def pytest_configure(config: pytest.Config) -> None:
    """Keep kafka-python's schema loading quiet for modules it imports later, too."""
    config.addinivalue_line("filterwarnings", _KAFKA_WARNING)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _kafka_sh(*args: str, timeout_s: float) -> None:
    """Run scripts/kafka.sh; fail the session loudly (never skip) when it does not succeed."""
    try:
        done = subprocess.run(
            ["bash", str(KAFKA_SH), *args],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"scripts/kafka.sh {' '.join(args)} timed out: {exc}", pytrace=False)
    if done.returncode != 0:
        pytest.fail(
            f"scripts/kafka.sh {' '.join(args)} exited {done.returncode}\n"
            f"{done.stdout}\n{done.stderr}",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real single-node Kafka broker on 127.0.0.1, started once per session: 'HOST:PORT'."""
    data_dir = tmp_path_factory.mktemp("kafka")
    port, controller_port = free_port(), free_port()
    _kafka_sh("fetch", timeout_s=900)
    _kafka_sh("start", str(data_dir), str(port), str(controller_port), timeout_s=180)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        _kafka_sh("stop", str(data_dir), timeout_s=90)


class LogBackend:
    """Opens (producer, consumer) pairs of one backend and closes them all at the end."""

    def __init__(self, name: str, data_dir: Path, bootstrap: str | None) -> None:
        self.name = name
        self._data_dir = data_dir
        self._bootstrap = bootstrap
        self._opened: list[LogProducer | LogConsumer] = []
        self.settings: CommonSettings | None = None

    def new_settings(self, partitions: int = 3) -> CommonSettings:
        """Settings of a log nobody has used yet (a fresh topic, or a fresh directory)."""
        unique = uuid.uuid4().hex[:12]
        return CommonSettings(
            data_dir=self._data_dir / unique,
            kafka_bootstrap=self._bootstrap,
            topic=f"test.{unique}",
            partitions=partitions,
        )

    def __call__(self, partitions: int = 3) -> tuple[LogProducer, LogConsumer]:
        """A producer and a consumer on a fresh log; its settings are kept in `self.settings`."""
        self.settings = self.new_settings(partitions)
        return self.open(self.settings)

    def open(self, settings: CommonSettings) -> tuple[LogProducer, LogConsumer]:
        """Another producer and consumer (new connections) on the log of these settings."""
        producer = open_producer(settings)
        self._opened.append(producer)
        consumer = open_consumer(settings)
        self._opened.append(consumer)
        return producer, consumer

    def close(self) -> None:
        """Close every producer and consumer opened here (closing twice is harmless)."""
        for log in reversed(self._opened):
            log.close()
        self._opened.clear()


@pytest.fixture(params=["embedded", pytest.param("kafka", marks=pytest.mark.kafka)])
def log_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LogBackend]:
    """Each log backend in turn: the embedded log in a fresh directory, Kafka on fresh topics."""
    name: str = request.param
    bootstrap = request.getfixturevalue("kafka_bootstrap") if name == "kafka" else None
    backend = LogBackend(name, tmp_path, bootstrap)
    try:
        yield backend
    finally:
        backend.close()


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Debian chromium for the whole session (playwright allows one sync driver);
    a missing browser is a failure, never a skip."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-browser.sh", pytrace=False)
    with sync_playwright() as playwright:
        # launch() gives every run a fresh temporary user-data-dir of its own.
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def kafka_python_garbage(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Finalise, after the test, the sockets kafka-python 3.0.12 leaves unclosed.

    Its KafkaNetSocket.connect does not close a socket whose connect failed; the garbage
    collector does, with a ResourceWarning that pytest (warnings as errors) would pin on
    whichever later test triggers the collection. Its log records of each refused connect
    would keep those sockets reachable (pytest keeps the records), so they are not made.
    """
    caplog.set_level(logging.CRITICAL, logger="kafka")
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()

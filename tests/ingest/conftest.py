"""Fixtures of the collector tests: a fixed clock, settings in a temp dir, the real embedded log."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from ingest.app import create_app
from ingest.settings import IngestSettings
from journey.log.base import Record
from journey.log.embedded import EmbeddedLog

RECEIVED = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
WRITE_KEY = "wk-test-0123456789"
Basic = Callable[..., dict[str, str]]
ReadLog = Callable[[EmbeddedLog], list[Record]]


def _basic(key: str = WRITE_KEY, colon: bool = True) -> dict[str, str]:
    token = base64.b64encode(f"{key}{':' if colon else ''}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _read_all(log: EmbeddedLog) -> list[Record]:
    log.seek(dict.fromkeys(log.partitions(), 0))
    records: list[Record] = []
    while batch := log.poll(1000, 0.05):
        records.extend(batch)
    return sorted(records, key=lambda r: (r.partition, r.offset))


@pytest.fixture
def received() -> datetime:
    """The fixed collector clock of every test."""
    return RECEIVED


@pytest.fixture
def write_key() -> str:
    return WRITE_KEY


@pytest.fixture
def basic() -> Basic:
    """Authorization header as Segment SDKs send it: basic(key, colon=True)."""
    return _basic


@pytest.fixture
def read_log() -> ReadLog:
    """Every record in a log, by partition then offset."""
    return _read_all


@pytest.fixture
def settings(tmp_path: Path) -> IngestSettings:
    return IngestSettings(data_dir=tmp_path, write_keys=[SecretStr(WRITE_KEY)], partitions=4)


@pytest.fixture
def log(settings: IngestSettings) -> Iterator[EmbeddedLog]:
    embedded = EmbeddedLog(settings.log_dir, settings.partitions, busy_timeout_s=0.2)
    yield embedded
    embedded.close()


@pytest.fixture
def client(settings: IngestSettings, log: EmbeddedLog) -> Iterator[TestClient]:
    with TestClient(create_app(settings, log, lambda: RECEIVED)) as test_client:
        yield test_client

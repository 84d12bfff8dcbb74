"""Fixtures of the warehouse tests: each test that takes `settings` or `writer` runs on both
kinds of DuckLake catalog, the SQLite file in the warehouse and a PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pg import PgCluster
from warehouse.settings import WarehouseSettings
from warehouse.writer import WarehouseWriter


@pytest.fixture(params=["sqlite", "postgres"])
def catalog(request: pytest.FixtureRequest) -> str | None:
    """JOURNEY_CATALOG_URL of a fresh lake: None (a SQLite file), or a new PostgreSQL database
    of the session's server."""
    if request.param == "sqlite":
        return None
    cluster: PgCluster = request.getfixturevalue("postgres")
    return cluster.catalog_url()


@pytest.fixture
def settings(tmp_path: Path, catalog: str | None) -> WarehouseSettings:
    """Settings of a fresh warehouse whose lock gives up quickly."""
    return WarehouseSettings(data_dir=tmp_path, lock_timeout_s=0.2, catalog_url=catalog)


@pytest.fixture
def writer(settings: WarehouseSettings) -> Iterator[WarehouseWriter]:
    """An open writer over a fresh warehouse."""
    with WarehouseWriter(settings) as w:
        yield w

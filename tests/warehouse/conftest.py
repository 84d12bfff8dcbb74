"""Fixtures of the warehouse tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from warehouse.settings import WarehouseSettings
from warehouse.writer import WarehouseWriter


@pytest.fixture
def settings(tmp_path: Path) -> WarehouseSettings:
    """Settings of a fresh warehouse whose lock gives up quickly."""
    return WarehouseSettings(data_dir=tmp_path, lock_timeout_s=0.2)


@pytest.fixture
def writer(settings: WarehouseSettings) -> Iterator[WarehouseWriter]:
    """An open writer over a fresh warehouse."""
    with WarehouseWriter(settings) as w:
        yield w

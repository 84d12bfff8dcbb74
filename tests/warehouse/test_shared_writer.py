"""Shared writers (several processors on one lake) against DuckLake's own conflict check."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from journey.facts import Changes
from warehouse.errors import CommitError
from warehouse.lake import LAKE
from warehouse.settings import WarehouseSettings
from warehouse.writer import WarehouseWriter


def test_6_4_a_commit_that_overlapped_another_writers_is_refused_not_retried(
    tmp_path: Path,
) -> None:
    """Commits of shared writers queue on the commit lock; if one ever overlaps another's (the
    lock's connection was lost), it was derived from a state without the other's rows: retrying
    it would store that, so the writer stops instead (a restart re-reads the warehouse)."""
    settings = WarehouseSettings(data_dir=tmp_path)
    a, b = WarehouseWriter(settings, shared=True), WarehouseWriter(settings, shared=True)
    a.open()
    b.open()
    try:
        a.commit([], Changes(), {0: 1}, None)

        def overlapped(con: duckdb.DuckDBPyConnection) -> None:
            con.execute(f"DELETE FROM {LAKE}.journey_meta")
            b.commit([], Changes(), {0: 7}, None)  # commits while a's transaction is open

        with pytest.raises(CommitError, match="another writer committed"):
            a.transact(overlapped)
        assert b.committed_offsets() == {0: 7}
    finally:
        a.close()
        b.close()

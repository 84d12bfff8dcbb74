"""The catalog checks (SPEC 6.5) on both kinds of catalog: what the writer refuses and what
`journey doctor` reports, a PostgreSQL catalog included (SPEC 6.3, 6.4)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import psycopg
import pytest
from warehouse_workload import changes_for, make_event

from journey.doctor import lake as doctor_lake
from journey.doctor.report import Finding
from processor.settings import ProcessorSettings
from tests.pg import PgCluster, free_port
from warehouse.errors import CatalogMissingError, WarehouseIOError
from warehouse.integrity import catalog_present, check_catalog
from warehouse.lake import locate
from warehouse.reader import WarehouseReader
from warehouse.settings import WarehouseSettings
from warehouse.writer import WarehouseWriter


def _fill(settings: WarehouseSettings) -> None:
    # inline_row_limit=0: the rows land in Parquet files the doctor then reads.
    with WarehouseWriter(settings.model_copy(update={"inline_row_limit": 0})) as writer:
        writer.commit([(make_event(0, "c1"), 0, 0)], changes_for(Counter({"c1": 1}), {"c1"}),
                      {0: 1}, None)


def _doctor(settings: WarehouseSettings, monkeypatch: pytest.MonkeyPatch) -> list[Finding]:
    # The doctor finds the catalog as the processor does: JOURNEY_CATALOG_URL.
    if settings.catalog_url is None:
        monkeypatch.delenv("JOURNEY_CATALOG_URL", raising=False)
    else:
        monkeypatch.setenv("JOURNEY_CATALOG_URL", settings.catalog_url)
    return doctor_lake.check(ProcessorSettings(data_dir=settings.data_dir)).findings


def test_6_5_a_written_lake_passes_the_checks_and_the_doctor(
    settings: WarehouseSettings, monkeypatch: pytest.MonkeyPatch,
) -> None:
    loc = locate(settings.warehouse_dir, settings.catalog_url)
    assert not catalog_present(loc)
    assert [(f.store, f.message) for f in _doctor(settings, monkeypatch)] == [
        ("catalog", "no warehouse yet")]
    _fill(settings)
    assert catalog_present(loc)
    check_catalog(loc, full=True)
    findings = _doctor(settings, monkeypatch)
    assert [(f.store, f.status) for f in findings] == [("catalog", "ok"), ("data files", "ok")]
    assert "files read in full" in findings[1].message
    assert "password" not in findings[0].path


def test_6_5_an_empty_catalog_beside_data_files_is_refused(
    settings: WarehouseSettings, postgres: PgCluster, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A catalog URL naming a fresh database while the lake's files remain (a typo, a database
    dropped or restored empty) would start a new lake whose upkeep deletes the old files."""
    _fill(settings)
    moved = settings.model_copy(update={"catalog_url": postgres.catalog_url()})
    with pytest.raises(CatalogMissingError, match="has no DuckLake tables"):
        WarehouseWriter(moved).open()
    findings = _doctor(moved, monkeypatch)
    assert [(f.store, f.status) for f in findings] == [("catalog", "problem")]
    assert list(settings.warehouse_dir.joinpath("data").rglob("*.parquet"))


def test_6_5_an_unreachable_postgresql_catalog_is_retryable_and_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    gone = WarehouseSettings(data_dir=tmp_path, catalog_url=(
        f"postgres:dbname=journey host=127.0.0.1 port={free_port()} user=journey "
        "password=hunter2 connect_timeout=2"))
    with pytest.raises(WarehouseIOError) as raised:
        WarehouseWriter(gone).open()
    assert raised.value.retryable and "hunter2" not in str(raised.value)
    findings = _doctor(gone, monkeypatch)
    assert [(f.store, f.status) for f in findings] == [("catalog", "problem")]
    assert "cannot be reached" in findings[0].message and "hunter2" not in findings[0].line()


def test_6_4_the_snapshot_probe_survives_a_cut_connection(
    postgres: PgCluster, tmp_path: Path,
) -> None:
    """The API keeps one connection to a PostgreSQL catalog for its snapshot checks; a server
    that ended it (restart, idle timeout) costs one reconnect, not an error."""
    url = postgres.catalog_url()
    settings = WarehouseSettings(data_dir=tmp_path, catalog_url=url)
    _fill(settings)
    reader = WarehouseReader(settings.warehouse_dir, settings.catalog_url)
    first = reader.current()
    assert first is not None
    # Readers of other tests' lakes (other databases of the session's server) keep theirs.
    dbname = url.split("dbname=", 1)[1].split()[0]
    with psycopg.connect(postgres.conninfo(), autocommit=True) as admin:
        cut = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE application_name = 'journey-reader' AND datname = %s",
                            [dbname]).fetchone()
    assert cut == (1,)
    again = reader.current()
    assert again is not None and again.version == first.version

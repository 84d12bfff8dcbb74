"""The warehouse's checks and repairs: catalog, every referenced data and delete file read in
full, and the durable copy of the erasure records."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from journey.doctor.report import Finding, Quarantine, not_repaired, ok, problem, repaired
from processor import fingerprint
from processor.config import core_config
from processor.models_table import model_rows
from processor.rebuild import rederive_all
from processor.settings import ProcessorSettings
from warehouse import erasure_record
from warehouse.errors import StoreDamagedError
from warehouse.integrity import LakeFile, check_catalog, file_problem, referenced_files
from warehouse.lake import LAKE, Location, attach_sql, connect, ident, locate, table_ddl
from warehouse.settings import WarehouseSettings
from warehouse.tables import DERIVED_ROWS
from warehouse.writer import LOCK_FILE, WarehouseWriter

# Tables `journey rebuild` derives again from the stored events; a bad file of any other table
# (events, offsets, watermark, erasures) takes a fresh lake re-read from the log.
DERIVED = frozenset({*DERIVED_ROWS, "customer_state", "models"})


@dataclass(slots=True)
class LakeCheck:
    """What the warehouse check found."""

    findings: list[Finding] = field(default_factory=list)
    lake_lost: bool = False  # catalog missing or unreadable, or events/internal files bad
    derived_bad: list[LakeFile] = field(default_factory=list)
    offsets: dict[int, int] = field(default_factory=dict)
    erasures: dict[int, datetime] = field(default_factory=dict)


def check(settings: ProcessorSettings) -> LakeCheck:
    """Check the catalog (SQLite integrity_check, DuckLake attach) and read every file."""
    out = LakeCheck()
    loc = _location(settings)
    catalog = loc.sqlite_path or loc.catalog
    try:
        check_catalog(loc, full=True)
    except StoreDamagedError as error:
        out.findings.append(problem("catalog", catalog, error.what))
        out.lake_lost = True
        return out
    if loc.sqlite_path is not None and not loc.sqlite_path.exists():
        out.findings.append(ok("catalog", catalog, "no warehouse yet"))
        return out
    con = connect()
    try:
        con.execute(attach_sql(loc, read_only=True))
        files = referenced_files(con)
        out.offsets = {int(p): int(o) for p, o in con.execute(
            f'SELECT "partition", next_offset FROM {LAKE}.journey_offsets').fetchall()}
        out.erasures = {int(h): at for h, at in con.execute(
            f"SELECT key_hash, max(erased_at) FROM {LAKE}.erasures GROUP BY key_hash").fetchall()}
    except duckdb.Error as error:
        out.findings.append(problem("catalog", catalog, f"DuckLake cannot read it: {error}"))
        out.lake_lost = True
        return out
    finally:
        con.close()
    out.findings.append(ok("catalog", catalog, "readable (integrity_check ok)"))
    bad = 0
    for item in files:
        why = file_problem(item, read=True)
        if why is None:
            continue
        bad += 1
        out.findings.append(problem("data file", item.path, f"{item.kind} file of table "
                                    f"{item.table} {why}"))
        if item.table in DERIVED:
            out.derived_bad.append(item)
        else:
            out.lake_lost = True
    if not bad:
        out.findings.append(ok("data files", loc.data_path, f"{len(files)} files read in full"))
    return out


@contextmanager
def writer_lock(warehouse_dir: Path) -> Iterator[bool]:
    """Hold the warehouse's writer lock (the one a processor holds) if it is free: whether."""
    warehouse_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(warehouse_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _location(settings: ProcessorSettings) -> Location:
    """The lake as the processor's writer finds it (JOURNEY_CATALOG_URL included)."""
    warehouse = WarehouseSettings(data_dir=settings.data_dir)
    return locate(warehouse.warehouse_dir, warehouse.catalog_url)


def check_erasures(settings: ProcessorSettings, lake: LakeCheck) -> list[Finding]:
    """Every erasure the lake records is also in the durable copy beside it."""
    path = erasure_record.path_of(settings.data_dir)
    kept = erasure_record.read(settings.data_dir)
    missing = [h for h, at in lake.erasures.items() if h not in kept or kept[h] < at]
    if missing:
        return [problem("erasure records", path, f"{len(missing)} erased keys of the lake are "
                        "not in the durable copy")]
    return [ok("erasure records", path, f"{len(kept)} erased keys recorded")]


def repair_erasures(settings: ProcessorSettings, lake: LakeCheck) -> list[Finding]:
    """Append the lake's erasure records that the durable copy lacks (before any lake repair)."""
    kept = erasure_record.read(settings.data_dir)
    missing = {h: at for h, at in lake.erasures.items() if h not in kept or kept[h] < at}
    for h, at in missing.items():
        erasure_record.append(settings.data_dir, [h], at)
    if not missing:
        return []
    return [repaired("erasure records", erasure_record.path_of(settings.data_dir),
                     f"copied {len(missing)} erased keys from the lake")]


def fresh_lake(settings: ProcessorSettings, quarantine: Quarantine) -> list[Finding]:
    """Move the catalog and the data files into the quarantine and start an empty lake that
    holds the erasure records; the processor then re-reads the log from offset 0."""
    loc = _location(settings)
    catalog = loc.sqlite_path
    if catalog is None:
        return [not_repaired("warehouse", loc.catalog, "a PostgreSQL catalog cannot be moved "
                             "aside here: restore it from its backup, then run the doctor again")]
    moved = []
    candidates = [loc.data_path, *(catalog.with_name(catalog.name + s)
                                   for s in ("", "-wal", "-shm"))]
    with writer_lock(settings.warehouse_dir) as held:
        if not held:
            return [not_repaired("warehouse", settings.warehouse_dir, "a processor took the "
                                 "warehouse meanwhile: stop it and repair again")]
        for path in candidates:
            if path.exists():
                moved.append(quarantine.move(path, "warehouse"))
    writer = WarehouseWriter(WarehouseSettings(data_dir=settings.data_dir))
    erased = erasure_record.read(settings.data_dir)
    writer.open()
    try:
        if erased:
            rows = pa.table({"key_hash": pa.array(list(erased), pa.int64()),
                             "erased_at": pa.array(list(erased.values()), pa.timestamp("us",
                                                                                      "UTC"))})

            def work(con: duckdb.DuckDBPyConnection) -> None:
                con.register("__journey_erased", rows)
                try:
                    con.execute(f"INSERT INTO {LAKE}.erasures SELECT key_hash, erased_at FROM "
                                "__journey_erased")
                finally:
                    con.unregister("__journey_erased")

            writer.transact(work)
    finally:
        writer.close()
    where = quarantine.root / "warehouse"
    return [repaired("warehouse", settings.warehouse_dir,
                     f"moved the damaged lake ({len(moved)} entries) to {where}; started an empty "
                     f"lake with {len(erased)} erased keys; the processor re-reads the log from "
                     "offset 0 at its next start")]


def rebuild_derived(settings: ProcessorSettings, bad: list[LakeFile],
                    quarantine: Quarantine) -> list[Finding]:
    """Copy the bad files aside, drop and recreate their tables, derive every table again from
    the stored events (as `journey rebuild`)."""
    for item in bad:
        if item.path.exists():
            quarantine.copy(item.path, "warehouse", item.table)
    tables = sorted({item.table for item in bad})
    ddl = table_ddl()
    config = core_config(settings)
    writer = WarehouseWriter(WarehouseSettings(data_dir=settings.data_dir))
    writer.open(verify=False)
    try:
        def recreate(con: duckdb.DuckDBPyConnection) -> None:
            for table in tables:
                con.execute(f"DROP TABLE {LAKE}.{ident(table)}")
                con.execute(f"CREATE TABLE {LAKE}.{ident(table)} ({ddl[table]})")

        writer.transact(recreate)
        events, customers, _ = rederive_all(writer, config, list(model_rows(config.models)))
        fingerprint.record(settings.data_dir, fingerprint.fingerprint(config))
    except Exception as error:
        return [not_repaired("warehouse", settings.warehouse_dir,
                             f"rebuilding the derived tables failed: {error}")]
    finally:
        writer.close()
    return [repaired("derived tables", settings.warehouse_dir,
                     f"recreated {', '.join(tables)} and derived every table again from "
                     f"{events} stored events ({customers} customers); the bad files are "
                     f"copied to {quarantine.root / 'warehouse'}")]


def reset_offsets(settings: ProcessorSettings, partitions: dict[int, int]) -> list[Finding]:
    """Set the committed offsets of these partitions back (to the log's end or 0): the stored
    events stay, and a replayed event is dropped by its event_id."""
    writer = WarehouseWriter(WarehouseSettings(data_dir=settings.data_dir))
    committed = writer.open().offsets
    merged = {**committed, **partitions}
    try:
        def work(con: duckdb.DuckDBPyConnection) -> None:
            con.execute(f"DELETE FROM {LAKE}.journey_offsets")
            for p, o in sorted(merged.items()):
                con.execute(f"INSERT INTO {LAKE}.journey_offsets VALUES (?, ?)", [p, o])

        writer.transact(work)
    finally:
        writer.close()
    return [repaired("offsets", settings.warehouse_dir,
                     f"the warehouse reads partitions {sorted(partitions)} of the log again from "
                     f"offsets {[partitions[p] for p in sorted(partitions)]}")]


"""The warehouse's repairs: the erasure records copied out, a fresh lake beside the
quarantined one, derived tables rebuilt from the stored events, committed offsets reset."""

from __future__ import annotations

import duckdb

from journey.doctor.lake import LakeCheck, location, writer_lock
from journey.doctor.report import Finding, Quarantine, not_repaired, repaired
from processor import fingerprint
from processor.config import core_config
from processor.models_table import model_rows
from processor.rebuild import rederive_all
from processor.settings import ProcessorSettings
from warehouse import erase, erasure_record
from warehouse.integrity import LakeFile
from warehouse.lake import LAKE, ident, table_ddl
from warehouse.settings import WarehouseSettings
from warehouse.writer import WarehouseWriter


def erasures(settings: ProcessorSettings, lake: LakeCheck) -> list[Finding]:
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
    loc = location(settings)
    catalog = loc.sqlite_path
    if catalog is None:
        return [not_repaired("warehouse", loc.shown, "a PostgreSQL catalog cannot be moved "
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
            erase.record(writer, erased)
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
        events, customers, _ = rederive_all(writer, config, list(model_rows(config.models)),
                                            workers=settings.workers)
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


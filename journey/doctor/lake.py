"""The warehouse's checks: catalog, every referenced data and delete file read in full, and the
durable copy of the erasure records; and the writer lock that repairs take."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb

from journey.doctor.report import Finding, ok, problem
from processor.settings import ProcessorSettings
from warehouse import erasure_record
from warehouse.errors import StoreDamagedError, WarehouseIOError
from warehouse.integrity import (
    LakeFile,
    catalog_present,
    check_catalog,
    file_problem,
    referenced_files,
)
from warehouse.lake import LAKE, Location, attach_sql, connect, locate
from warehouse.tables import DERIVED_ROWS
from warehouse.writer import LOCK_FILE

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
    loc = location(settings)
    catalog = loc.shown  # never a password
    try:
        check_catalog(loc, full=True)
        present = catalog_present(loc)
    except StoreDamagedError as error:
        out.findings.append(problem("catalog", catalog, error.what))
        out.lake_lost = True
        return out
    except WarehouseIOError as error:
        # An unreachable PostgreSQL server says nothing about the lake: not lost, not checked.
        out.findings.append(problem("catalog", catalog, f"{error.message}: "
                                    f"{error.context.get('detail', '')}".strip()))
        return out
    if not present:
        out.findings.append(ok("catalog", catalog, "no warehouse yet"))
        return out
    con = connect(loc=loc)
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
    out.findings.append(ok("catalog", catalog, "readable (integrity_check ok)" if loc.sqlite_path
                           else "readable (PostgreSQL checks its own pages: no integrity_check)"))
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


def location(settings: ProcessorSettings) -> Location:
    """The lake as the processor's writer finds it (JOURNEY_CATALOG_URL included)."""
    return locate(settings.warehouse_dir, settings.catalog_url)


def check_erasures(settings: ProcessorSettings, lake: LakeCheck) -> list[Finding]:
    """Every erasure the lake records is also in the durable copy beside it."""
    path = erasure_record.path_of(settings.data_dir)
    kept = erasure_record.read(settings.data_dir)
    missing = [h for h, at in lake.erasures.items() if h not in kept or kept[h] < at]
    if missing:
        return [problem("erasure records", path, f"{len(missing)} erased keys of the lake are "
                        "not in the durable copy")]
    return [ok("erasure records", path, f"{len(kept)} erased keys recorded")]

"""Checks that keep a damaged lake from being "repaired" by deletion (SPEC 6.5).

A writer that opened a lake whose SQLite catalog is gone would create a fresh one, and its
maintenance would then delete every old Parquet file as an orphan. A writer that opened a lake
whose catalog references a missing or cut file would fail in the middle of a commit. Both are
refused up front with a typed error naming the repair command; `journey doctor` runs the same
checks and reads every file in full.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from warehouse import sqlitecat
from warehouse.errors import CatalogDamagedError, CatalogMissingError, DataFileError
from warehouse.lake import LAKE, Location


@dataclass(frozen=True, slots=True)
class LakeFile:
    """A data or delete file the current snapshot of a table references, with its stored size."""

    table: str
    path: Path
    size: int
    kind: str  # "data" or "delete"


def data_files_on_disk(loc: Location) -> list[Path]:
    """Every file under the lake's data directory."""
    if not loc.data_path.is_dir():
        return []
    return sorted(p for p in loc.data_path.rglob("*") if p.is_file())


def catalog_present(loc: Location) -> bool:
    """Whether the lake's catalog exists: its SQLite file, or DuckLake's tables in PostgreSQL."""
    if loc.pg_conninfo is not None:
        from warehouse import pgcatalog  # psycopg only for lakes that need it

        return "ducklake_metadata" in pgcatalog.catalog_tables(loc.pg_conninfo)
    return loc.sqlite_path is not None and loc.sqlite_path.exists()


def check_catalog(loc: Location, full: bool = False) -> None:
    """Refuse a missing catalog beside existing data files, or an unreadable one.

    full: SQLite's integrity_check (reads every page) instead of a read of the DuckLake tables;
    a PostgreSQL server checks its own pages, so there it changes nothing.
    """
    if loc.pg_conninfo is not None:
        _check_pg_catalog(loc, loc.pg_conninfo)
        return
    path = loc.sqlite_path
    if path is None:
        return  # another kind of catalog: DuckLake's ATTACH is its only check
    if not path.exists():
        found = data_files_on_disk(loc)
        if found:
            raise CatalogMissingError(
                f"the warehouse catalog {path} is missing but {len(found)} data files remain "
                f"under {loc.data_path}", path=str(path), data_files=len(found))
        return
    try:
        if full:
            verdict = sqlitecat.rows(path, "PRAGMA integrity_check")
            if verdict != [("ok",)]:
                raise _Damaged("; ".join(str(r[0]) for r in verdict[:3]))
        tables = {str(r[0]) for r in sqlitecat.rows(
            path, "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and "ducklake_metadata" not in tables:
            raise _Damaged("not a DuckLake catalog")
        if not tables and data_files_on_disk(loc):
            # An empty catalog (its creation was cut short, or it was replaced) would
            # become a fresh lake beside the old files: the same as a missing one.
            raise _Damaged("it is empty while data files remain")
        if tables:
            sqlitecat.rows(path, "SELECT count(*) FROM ducklake_snapshot")
    except (duckdb.Error, _Damaged) as error:
        raise CatalogDamagedError(f"the warehouse catalog {path} cannot be read: {error}",
                                  path=str(path)) from None


class _Damaged(Exception):
    """A catalog SQLite reads but DuckLake could not use."""


def _check_pg_catalog(loc: Location, conninfo: str) -> None:
    """The SQLite checks' counterpart: a database without DuckLake's tables while data files
    remain (a wrong JOURNEY_CATALOG_URL, a dropped or restored-empty database) would become a
    fresh lake, and maintenance would delete the old files as orphans."""
    from warehouse import pgcatalog

    tables = pgcatalog.catalog_tables(conninfo)  # WarehouseIOError: unreachable, retryable
    if tables and "ducklake_metadata" not in tables:
        raise CatalogDamagedError(f"the warehouse catalog {loc.shown} is not a DuckLake catalog",
                                  path=loc.shown)
    if not tables:
        found = data_files_on_disk(loc)
        if found:
            raise CatalogMissingError(
                f"the warehouse catalog {loc.shown} has no DuckLake tables but {len(found)} "
                f"data files remain under {loc.data_path}", path=loc.shown,
                data_files=len(found))


def referenced_files(con: duckdb.DuckDBPyConnection) -> list[LakeFile]:
    """The data and delete files of every table at the current snapshot of the attached lake."""
    tables = [r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ? ORDER BY table_name",
        [LAKE]).fetchall()]
    out: list[LakeFile] = []
    for table in tables:
        rows = con.execute(
            "SELECT data_file, data_file_size_bytes, delete_file, delete_file_size_bytes "
            "FROM ducklake_list_files(?, ?)", [LAKE, table]).fetchall()
        for data, data_size, delete, delete_size in rows:
            out.append(LakeFile(table, Path(data), int(data_size), "data"))
            if delete is not None:
                out.append(LakeFile(table, Path(delete), int(delete_size or 0), "delete"))
    return out


def file_problem(item: LakeFile, read: bool = False) -> str | None:
    """What is wrong with one referenced file (missing, other size, unreadable), or None.

    read: also read every row group (finds damage inside a file whose size is right).
    """
    try:
        size = item.path.stat().st_size
    except FileNotFoundError:
        return "missing"
    except OSError as error:
        return f"cannot be read: {error}"
    if item.size and size != item.size:
        return f"has {size} bytes, the catalog recorded {item.size}"
    try:
        parquet = pq.ParquetFile(item.path)
        if read:
            for group in range(parquet.num_row_groups):
                parquet.read_row_group(group)
    except Exception as error:  # pyarrow raises several types for a damaged file
        return f"is not a readable Parquet file: {error}"
    return None


def check_files(con: duckdb.DuckDBPyConnection) -> None:
    """Refuse a lake whose current snapshot references a missing or cut file (stat only)."""
    for item in referenced_files(con):
        try:
            size = item.path.stat().st_size
        except OSError:
            raise DataFileError(f"the {item.kind} file {item.path} of table {item.table} is "
                                "missing", path=str(item.path), table=item.table) from None
        if item.size and size != item.size:
            raise DataFileError(
                f"the {item.kind} file {item.path} of table {item.table} has {size} bytes, the "
                f"catalog recorded {item.size}", path=str(item.path), table=item.table)

"""The DuckLake under the warehouse: where its catalog and files live, offline extension loading,
attach statements and the tables' DDL, shared by the writer and every reader.

The extensions come from the `duckdb-extension-*` packages installed beside duckdb and are LOADed
by path with autoinstall/autoload switched off, so nothing is ever downloaded at run time. The
postgres extension (about 70 ms a connection) is loaded only where a lake may have a PostgreSQL
catalog.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from warehouse.tables import ROW_SCHEMAS, SCHEMAS, duckdb_type

LAKE = "journey_lake"  # the alias every connection gives the attached lake
CATALOG_FILE = "catalog.sqlite"
DELETES_LOG = "journey_deletes"
DATA_DIR = "data"
# Internal tables besides customer_state (tables.py): the consumer offsets and the watermark,
# committed in the same DuckLake transaction as the rows they describe.
INTERNAL_DDL: dict[str, str] = {
    "journey_offsets": '"partition" INTEGER, next_offset BIGINT',
    "journey_meta": "watermark TIMESTAMPTZ, committed_at TIMESTAMPTZ",
    # SPEC 2.4: one-way hashes of erased keys, so a replayed log never brings a customer back.
    "erasures": "key_hash BIGINT, erased_at TIMESTAMPTZ",
    # The keys the last processor commit deleted by (statements.log_deletes); each commit's are
    # in the change feed, where a reader moving a copy forward finds them (api/advance.py).
    DELETES_LOG: "col VARCHAR, \"key\" VARCHAR, tables VARCHAR",
}
EXTENSIONS: tuple[tuple[str, str], ...] = (
    ("duckdb_extension_sqlite_scanner", "sqlite_scanner"),
    ("duckdb_extension_ducklake", "ducklake"),
)
# The package ships postgres.duckdb_extension, but DuckDB names the entry point it looks for after
# the file (postgres_scanner_duckdb_cpp_init), so it is loaded through a symlink of the right name.
POSTGRES_PACKAGE, POSTGRES_FILE, POSTGRES_NAME = (
    "duckdb_extension_postgres", "postgres", "postgres_scanner")


@dataclass(frozen=True, slots=True)
class Committed:
    """What the warehouse holds as committed: consumer offsets, watermark, DuckLake snapshot id."""

    offsets: dict[int, int]
    watermark: datetime | None
    version: int
    committed_at: datetime | None


@dataclass(frozen=True, slots=True)
class Location:
    """Where one lake lives: its catalog (a DuckLake metadata URL) and its data directory."""

    catalog: str  # e.g. "sqlite:/abs/catalog.sqlite" or "postgres:dbname=journey host=..."
    data_path: Path

    @property
    def sqlite_path(self) -> Path | None:
        """The catalog file when the catalog is SQLite (the one-machine default)."""
        return Path(self.catalog.removeprefix("sqlite:")) if self.catalog.startswith(
            "sqlite:") else None

    @property
    def pg_conninfo(self) -> str | None:
        """The libpq connection string (key=value or URL) when the catalog is PostgreSQL."""
        return self.catalog.removeprefix("postgres:") if self.catalog.startswith(
            "postgres:") else None

    @property
    def shown(self) -> str:
        """The catalog for messages and reports: a file path, or a connection string without
        its password."""
        if self.sqlite_path is not None:
            return str(self.sqlite_path)
        return "postgres:" + redacted(self.pg_conninfo) if self.pg_conninfo else self.catalog


def redacted(conninfo: str) -> str:
    """A libpq connection string (key=value or URL) without its password."""
    if "://" in conninfo:
        return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", conninfo)
    return re.sub(r"password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", "password=***", conninfo)


def locate(warehouse_dir: Path, catalog_url: str | None = None) -> Location:
    """The lake of a warehouse directory: SQLite catalog inside it unless a catalog URL is given
    (`postgres:...` DuckLake syntax; `postgresql://` URLs are passed through as libpq strings)."""
    root = warehouse_dir.resolve()
    if not catalog_url:
        return Location(f"sqlite:{root / CATALOG_FILE}", root / DATA_DIR)
    if catalog_url.startswith(("postgresql://", "postgres://")):
        return Location(f"postgres:{catalog_url}", root / DATA_DIR)
    return Location(catalog_url, root / DATA_DIR)


def _extension_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the Python package {package} is not installed")
    base = Path(next(iter(spec.submodule_search_locations)))
    return base / "extensions" / f"v{duckdb.__version__}"


def extension_paths(loc: Location | None = None) -> list[Path]:
    """The installed extension files, in load order (sqlite_scanner, postgres_scanner when the
    lake may have a PostgreSQL catalog, ducklake). loc None: any lake, so all of them."""
    paths = [_extension_dir(package) / f"{name}.duckdb_extension" for package, name in EXTENSIONS]
    if loc is None or loc.pg_conninfo is not None:
        paths.insert(1, postgres_extension())
    return paths


def postgres_extension() -> Path:
    """The postgres extension under the file name DuckDB needs, made once beside the package's
    file (or in the user's cache when site-packages is read-only)."""
    target = _extension_dir(POSTGRES_PACKAGE) / f"{POSTGRES_FILE}.duckdb_extension"
    if not target.is_file():
        raise RuntimeError(f"{target} is missing: reinstall duckdb-extension-postgres")
    name = f"{POSTGRES_NAME}.duckdb_extension"
    for folder in (target.parent, Path.home() / ".cache" / "journey" / target.parent.name):
        link = folder / name
        if link.is_file():
            return link
        with contextlib.suppress(OSError):
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{name}.{os.getpid()}"
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(target)
            os.replace(tmp, link)  # atomic: a concurrent process sees no half-made link
            return link
    raise RuntimeError(f"cannot make a {name} link to {target} (site-packages and ~/.cache "
                       "are read-only)")


def load_sql(loc: Location | None = None) -> str:
    """Statements that load the extensions offline (also written into the analysts' init file)."""
    lines = ["SET autoinstall_known_extensions = false;", "SET autoload_known_extensions = false;"]
    lines += [f"LOAD {literal(str(p))};" for p in extension_paths(loc)]
    return "\n".join(lines) + "\n"


def connect(database: str = ":memory:", loc: Location | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the DuckLake extensions loaded from site-packages, times in UTC
    (for any kind of catalog unless the lake is given)."""
    con = duckdb.connect(database, config={"autoinstall_known_extensions": False,
                                           "autoload_known_extensions": False})
    load_into(con, loc)
    return con


def load_into(con: duckdb.DuckDBPyConnection, loc: Location | None = None) -> None:
    """LOAD the extensions into an existing connection (by path: nothing is downloaded)."""
    for path in extension_paths(loc):
        con.execute(f"LOAD {literal(str(path))}")
    con.execute("SET GLOBAL TimeZone = 'UTC'")


def attach_sql(loc: Location, *, read_only: bool, snapshot: int | None = None,
               alias: str = LAKE) -> str:
    """The ATTACH statement of a lake: READ_ONLY (optionally pinned to a snapshot) for readers.

    The catalog keeps the data path it was made with and refuses another one; the files are
    named relative to it, so a data directory moved or restored elsewhere is read where it is
    now (OVERRIDE_DATA_PATH: for this attachment only, the catalog is not changed)."""
    options = [f"DATA_PATH {literal(str(loc.data_path) + '/')}", "OVERRIDE_DATA_PATH TRUE"]
    if read_only:
        options.append("READ_ONLY")
    if snapshot is not None:
        options.append(f"SNAPSHOT_VERSION {int(snapshot)}")
    return f"ATTACH {literal('ducklake:' + loc.catalog)} AS {ident(alias)} ({', '.join(options)})"


def prepare_catalog(loc: Location) -> None:
    """Create the SQLite catalog file in WAL mode before DuckLake fills it: readers in other
    processes then never block the writer's commit, nor it them. (Python's sqlite3 may open it
    only here, before it exists and so before any DuckDB of this process can: sqlitecat.)"""
    path = loc.sqlite_path
    if path is None or path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    loc.data_path.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    try:
        con.execute("PRAGMA journal_mode=WAL")
    finally:
        con.close()
    path.chmod(0o600)


def table_ddl() -> dict[str, str]:
    """Column definitions of every lake table, by table name."""
    ddl = {name: ", ".join(f"{ident(f.name)} {duckdb_type(f.type)}" for f in schema)
           for name, schema in {**SCHEMAS, **ROW_SCHEMAS}.items()}
    return {**ddl, **INTERNAL_DDL}


def latest_snapshot(loc: Location) -> int | None:
    """The newest snapshot id, read straight from the catalog (about 1 ms from SQLite, one kept
    libpq connection's round trip from PostgreSQL); None before the first commit."""
    if loc.pg_conninfo is not None:
        from warehouse import pgcatalog  # psycopg is imported only by lakes that need it

        return pgcatalog.latest_snapshot(loc.pg_conninfo)
    path = loc.sqlite_path
    if path is None or not path.exists():
        return None
    from warehouse import sqlitecat  # not Python's sqlite3 beside DuckDB's: see sqlitecat

    try:
        # None until the first commit after the one that created the journey tables.
        found = sqlitecat.rows(path, (
            "SELECT max(snapshot_id) FROM ducklake_snapshot WHERE snapshot_id > "
            "(SELECT min(begin_snapshot) FROM ducklake_table WHERE table_name = 'journey_meta')"))
    except duckdb.Error as error:
        if "no such table" in str(error):  # a catalog being created has no tables yet
            return None
        raise
    return None if not found or found[0][0] is None else int(found[0][0])


def one_row(con: duckdb.DuckDBPyConnection, sql: str,
            params: Sequence[object] = ()) -> tuple[Any, ...] | None:
    """The first row of a query, read with fetchall: a result left pending (fetchone) keeps
    DuckLake's statement on a SQLite catalog open, and with it a read transaction that holds
    back the WAL's checkpoints in every process (erasure's truncation waited on it forever)."""
    rows = con.execute(sql, list(params)).fetchall()
    return rows[0] if rows else None


def literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'

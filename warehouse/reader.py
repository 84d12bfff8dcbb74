"""Readers in any process: the current snapshot of the warehouse and DuckDB views over it.

A snapshot is one manifest version. Its files are immutable and survive at least the writer's
grace period after a newer version replaces them, so a query over a snapshot sees one version.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from warehouse.convert import StoredEvent, events_from_arrow
from warehouse.manifest import MANIFEST, Manifest, read_manifest
from warehouse.tables import SCHEMAS, duckdb_type

VIEWS_SQL = "views.sql"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One committed version of the warehouse under an absolute root."""

    root: Path
    manifest: Manifest

    @property
    def version(self) -> int:
        return self.manifest.version

    def paths(self, table: str) -> list[Path]:
        """Absolute paths of a table's files."""
        return [self.root / f.path for f in self.manifest.files(table)]


class WarehouseReader:
    """Reads the current snapshot; cheap to call often (cached on the manifest file's identity)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._key: tuple[int, int, int, int] | None = None
        self._snapshot: Snapshot | None = None

    def current(self) -> Snapshot | None:
        """The latest committed snapshot, or None if nothing was ever committed."""
        try:
            st = os.stat(self.root / MANIFEST)
        except FileNotFoundError:
            return None
        # A replaced manifest is a new inode; mtime and size alone can repeat within a tick.
        key = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)
        if key != self._key or self._snapshot is None:
            manifest = read_manifest(self.root)
            if manifest is None:
                return None
            self._snapshot = Snapshot(self.root, manifest)
            self._key = key
        return self._snapshot

    def register_views(self, con: duckdb.DuckDBPyConnection, snap: Snapshot) -> None:
        """Create (or replace) one view per table, and `meta`, in a DuckDB connection."""
        register_views(con, snap)

    def views_sql(self, snap: Snapshot) -> str:
        """The SQL text that creates the views of a snapshot."""
        return views_sql(snap)


def read_events(snap: Snapshot, batch_size: int, ordered: bool) -> Iterator[list[StoredEvent]]:
    """The stored events of a snapshot in batches: file by file, or sorted by (time, event_id)."""
    paths = [str(p) for p in snap.paths("events")]
    if not ordered:
        for path in paths:
            for batch in pq.ParquetFile(path).iter_batches(batch_size):
                yield events_from_arrow(batch)
        return
    if not paths:
        return
    con = duckdb.connect()
    try:
        reader = con.execute(
            "SELECT * FROM read_parquet(?, hive_partitioning = false)"
            " ORDER BY timestamp, event_id",
            [paths],
        ).to_arrow_reader(batch_size)
        for batch in reader:
            yield events_from_arrow(batch)
    finally:
        con.close()


def register_views(con: duckdb.DuckDBPyConnection, snap: Snapshot) -> None:
    """Create (or replace) one view per table, and `meta`, in a DuckDB connection."""
    con.execute(views_sql(snap))


def views_sql(snap: Snapshot) -> str:
    """SQL creating a view per table over its Parquet files (absolute paths) and a `meta` view."""
    m = snap.manifest
    lines = [f"-- journey warehouse, version {m.version}; re-read this file for a newer one."]
    for table, schema in SCHEMAS.items():
        paths = snap.paths(table)
        if paths:
            files = ", ".join(_literal(str(p)) for p in paths)
            # No hive partitioning: a `key=value` directory in the root must not become a column.
            body = f"SELECT * FROM read_parquet([{files}], hive_partitioning = false)"
        else:
            columns = ", ".join(
                f"CAST(NULL AS {duckdb_type(f.type)}) AS {_ident(f.name)}" for f in schema
            )
            body = f"SELECT {columns} WHERE false"
        lines.append(f"CREATE OR REPLACE VIEW {_ident(table)} AS {body};")
    lines.append(
        "CREATE OR REPLACE VIEW meta AS SELECT "
        f"CAST({m.version} AS BIGINT) AS version, "
        f"{_timestamp(m.committed_at)} AS committed_at, "
        f"{_timestamp(m.watermark)} AS watermark;"
    )
    return "\n".join(lines) + "\n"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _timestamp(value: datetime | None) -> str:
    if value is None:
        return "CAST(NULL AS TIMESTAMPTZ)"
    return f"CAST({_literal(value.isoformat())} AS TIMESTAMPTZ)"

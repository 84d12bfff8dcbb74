"""Readers in any process: the newest snapshot id of the lake, and DuckDB views over a snapshot.

A reader attaches the lake READ_ONLY, pinned to one snapshot (SNAPSHOT_VERSION), so every query
of that connection sees one commit. The writer's maintenance expires a snapshot only once its
successor is older than the grace period (JOURNEY_GRACE_PERIOD_S, default 10 minutes) and deletes
files later still, so a pinned snapshot stays readable for at least that long after a newer one
appears. The analysts' init file attaches without a pin: each of their queries sees the newest
commit and never goes stale.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from warehouse.accounts import ACCOUNT_VIEWS, account_view_statements
from warehouse.lake import (
    LAKE,
    Location,
    attach_sql,
    ident,
    latest_snapshot,
    load_into,
    load_sql,
    locate,
)
from warehouse.tables import SCHEMAS, duckdb_type

VIEWS_SQL = "views.sql"
VIEWS: tuple[str, ...] = (*SCHEMAS, "meta", *ACCOUNT_VIEWS)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One committed DuckLake snapshot of a lake."""

    location: Location
    version: int


class WarehouseReader:
    """Finds the newest snapshot (one small catalog query) and binds DuckDB views to one."""

    def __init__(self, root: Path, catalog_url: str | None = None) -> None:
        self.root = root.resolve()
        self.location = locate(self.root, catalog_url)

    def current(self) -> Snapshot | None:
        """The newest snapshot, or None before the writer has created the lake."""
        version = latest_snapshot(self.location)
        return None if version is None else Snapshot(self.location, version)

    def register_views(self, con: duckdb.DuckDBPyConnection, snap: Snapshot) -> None:
        """Attach the lake READ_ONLY at the snapshot in `con` and create one view per table."""
        register_views(con, snap)

    def offsets(self, snap: Snapshot) -> dict[int, int]:
        """The consumer offsets committed with a snapshot (partition -> next offset)."""
        return {int(p): int(o) for p, o in self._rows(
            snap, f'SELECT "partition", next_offset FROM {LAKE}.journey_offsets')}

    def meta(self, snap: Snapshot) -> tuple[datetime | None, datetime | None]:
        """(committed_at, watermark) of a snapshot: when it was committed, the latest event time."""
        rows = self._rows(snap, "SELECT committed_at, watermark FROM meta")
        return (rows[0][0], rows[0][1]) if rows else (None, None)

    def _rows(self, snap: Snapshot, sql: str) -> list[tuple[Any, ...]]:
        con = duckdb.connect()
        try:
            register_views(con, snap)
            return con.execute(sql).fetchall()
        finally:
            con.close()

    def views_sql(self, snap: Snapshot | None = None) -> str:
        """The init SQL of an analyst's session: load, attach (pinned if snap), views."""
        return views_sql(self.location, None if snap is None else snap.version)


def register_views(con: duckdb.DuckDBPyConnection, snap: Snapshot) -> None:
    """Attach the lake at the snapshot (replacing an earlier attachment) and create the views."""
    load_into(con, snap.location)
    attached = con.execute("SELECT 1 FROM duckdb_databases() WHERE database_name = ?",
                           [LAKE]).fetchone()
    if attached:
        con.execute(f"USE memory; DETACH {LAKE}")
    con.execute(attach_sql(snap.location, read_only=True, snapshot=snap.version))
    present = {str(r[0]) for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ?", [LAKE]).fetchall()}
    con.execute(view_statements(snap.version, present))


def _empty_view(table: str) -> str:
    columns = ", ".join(f"CAST(NULL AS {duckdb_type(f.type)}) AS {ident(f.name)}"
                        for f in SCHEMAS[table])
    return f"CREATE OR REPLACE VIEW {ident(table)} AS SELECT {columns} WHERE false;"


def views_sql(loc: Location, version: int | None = None) -> str:
    """SQL for `duckdb -init`: load the extensions offline, attach the lake READ_ONLY and create
    the documented views (pinned to a snapshot when version is given)."""
    return (
        "-- journey warehouse: DuckLake catalog " + loc.catalog + "\n"
        + load_sql(loc)
        + attach_sql(loc, read_only=True, snapshot=version) + ";\n"
        + view_statements(version)
    )


def view_statements(version: int | None, present: set[str] | None = None) -> str:
    """CREATE VIEW statements over the attached lake, and `meta` (version, committed_at,
    watermark: one row even before the first commit).

    A table missing from `present` (the lake's tables, when known: a snapshot written by an
    older release, before the processor's upgrade created the table) gets an empty typed view.
    """
    lines = [f"CREATE OR REPLACE VIEW {ident(t)} AS SELECT * FROM {LAKE}.{ident(t)};"
             if present is None or t in present else _empty_view(t) for t in SCHEMAS]
    snapshot = (f"CAST({int(version)} AS BIGINT)" if version is not None
                else f"(SELECT id FROM ducklake_current_snapshot('{LAKE}'))")
    lines.append(f"CREATE OR REPLACE VIEW meta AS {meta_select(snapshot)};")
    return "\n".join(lines) + "\n" + account_view_statements()


def meta_select(version: str, lake: str = LAKE) -> str:
    """The one row of `meta` (version, committed_at, watermark) of the lake attached as `lake`,
    with `version` an SQL expression; one row even before the first commit."""
    return (f"SELECT {version} AS version, m.committed_at, m.watermark "
            f"FROM (SELECT 1) AS one LEFT JOIN {lake}.journey_meta AS m ON true")

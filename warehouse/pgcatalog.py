"""Small reads straight from a PostgreSQL DuckLake catalog, without DuckDB.

The API asks for the newest snapshot id every refresh interval; DuckDB would cost a connection,
the postgres and ducklake extensions and an ATTACH (hundreds of ms), a libpq query well under one
ms on a kept connection. One connection per catalog and process is kept, and opened again after
a fork or a failure.
"""

from __future__ import annotations

import atexit
import os
import threading
from typing import Any

import psycopg

from warehouse.errors import CatalogDamagedError, WarehouseIOError
from warehouse.lake import redacted

CONNECT_TIMEOUT_S = 5
KEPT = 8  # catalogs a process keeps a connection to (one in production, many in a test run)
# None until the first commit after the one that created the journey tables (the same rule as
# the SQLite catalog's reader in lake.py).
LATEST_SQL = (
    "SELECT max(snapshot_id) FROM ducklake_snapshot HAVING max(snapshot_id) > "
    "(SELECT min(begin_snapshot) FROM ducklake_table WHERE table_name = 'journey_meta')")

_lock = threading.Lock()
_connections: dict[str, psycopg.Connection[tuple[Any, ...]]] = {}
# A forked child must not close its parent's connections (libpq would end their sessions on the
# server) nor drop them (psycopg warns about an unclosed one): it keeps them, unused.
_inherited: list[object] = []


def _after_fork() -> None:
    _inherited.extend(_connections.values())
    _connections.clear()


os.register_at_fork(after_in_child=_after_fork)


def _connection(conninfo: str) -> psycopg.Connection[tuple[Any, ...]]:
    kept = _connections.get(conninfo)
    if kept is not None and not kept.closed:
        return kept
    _forget(conninfo)
    while len(_connections) >= KEPT:
        _forget(next(iter(_connections)))
    con = psycopg.connect(conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                          application_name="journey-reader")
    _connections[conninfo] = con
    return con


def _forget(conninfo: str) -> None:
    kept = _connections.pop(conninfo, None)
    if kept is not None:
        kept.close()


@atexit.register
def close_all() -> None:
    """Close the kept connections (psycopg warns about one left to the garbage collector)."""
    with _lock:
        for conninfo in list(_connections):
            _forget(conninfo)


def latest_snapshot(conninfo: str) -> int | None:
    """The newest snapshot id of the catalog, or None before the journey tables' first commit
    (or before the catalog exists at all)."""
    with _lock:
        for attempt in range(2):
            try:
                con = _connection(conninfo)
                row = con.execute(LATEST_SQL).fetchone()
            except psycopg.errors.UndefinedTable:
                return None  # DuckLake has not created its catalog tables yet
            except psycopg.OperationalError as error:
                # The server restarted or cut the kept connection: one fresh try, then a
                # retryable error (the password, if any, is not in libpq's message).
                _forget(conninfo)
                if attempt:
                    raise WarehouseIOError("the PostgreSQL catalog cannot be read",
                                           path="postgres catalog", detail=str(error)) from None
                continue
            return None if row is None or row[0] is None else int(row[0])
    return None


def catalog_tables(conninfo: str) -> set[str]:
    """The DuckLake tables (ducklake_*) the catalog's database has on its search path, over a
    connection of its own (a check runs once, the snapshot reads go on); WarehouseIOError when
    the server cannot be reached, CatalogDamagedError when it is a DuckLake it cannot read."""
    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                             application_name="journey-check") as con:
            tables = {str(r[0]) for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = "
                "current_schema() AND table_name LIKE 'ducklake%'").fetchall()}
            if "ducklake_snapshot" in tables:
                con.execute("SELECT count(*) FROM ducklake_snapshot").fetchone()
            return tables
    except psycopg.OperationalError as error:
        raise WarehouseIOError("the PostgreSQL catalog cannot be reached",
                               path=redacted(conninfo), detail=str(error)) from None
    except psycopg.DatabaseError as error:
        raise CatalogDamagedError(f"the PostgreSQL catalog {redacted(conninfo)} cannot be "
                                  f"read: {error}", path=redacted(conninfo)) from None


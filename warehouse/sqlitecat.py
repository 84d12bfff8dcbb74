"""The SQLite catalog file, read through the one copy of SQLite that DuckLake itself uses.

SQLite's file locks are POSIX record locks, and those belong to a process, not a connection. A
second copy of SQLite in the same process (Python's `sqlite3` module beside the copy inside
DuckDB's sqlite extension) cannot see the first one's locks: opening a WAL catalog, it takes the
WAL index for unused and truncates it under DuckDB's mapping; closing, it drops DuckDB's locks,
so another process's checkpoint may overwrite pages DuckDB is reading (SQLite's "How To Corrupt
An SQLite Database File", 2.2). The API's 0.1 s snapshot poll did both beside its own DuckDB and,
where they share a process, the writer's: a bus error, or "database disk image is malformed"
under a concurrent commit. So a journey process reads the catalog only through DuckDB, and the
two things only Python's module can do run where no DuckDB of the process has the file open:
creating it (lake.prepare_catalog: a file that does not exist yet) and VACUUM (in a child
process, `vacuum`).
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import duckdb

from warehouse.errors import WarehouseIOError
from warehouse.lake import extension_paths, literal

_ALIAS = "journey_catalog_file"
_lock = threading.Lock()
_probe: list[duckdb.DuckDBPyConnection] = []  # one per process, made on first use


def rows(path: Path, sql: str) -> list[tuple[str | None, ...]]:
    """The rows of one read-only SQLite query on the catalog file, values as SQLite's text.

    About 1 ms: the file is attached READ_ONLY for the query and detached after it, so no handle
    outlives the call (a catalog replaced by a restore is read afresh, and tests that make
    hundreds of lakes keep no file open). Raises duckdb.Error when the file cannot be read."""
    with _lock:
        if not _probe:
            con = duckdb.connect(config={"autoinstall_known_extensions": False,
                                         "autoload_known_extensions": False, "threads": 1})
            sqlite = next(p for p in extension_paths() if p.name.startswith("sqlite_scanner"))
            con.execute(f"LOAD {literal(str(sqlite))}")
            _probe.append(con)
        con = _probe[0]
        con.execute(f"ATTACH {literal(str(path))} AS {_ALIAS} (TYPE sqlite, READ_ONLY)")
        try:
            return con.execute("SELECT * FROM sqlite_query(?, ?)", [_ALIAS, sql]).fetchall()
        finally:
            con.execute(f"DETACH {_ALIAS}")


_VACUUM = """
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
con.execute("PRAGMA secure_delete = ON")
con.execute("VACUUM")
con.execute("PRAGMA busy_timeout = 200")
for _ in range(int(sys.argv[2])):
    busy = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    if busy is None or not busy[0]:
        break
    time.sleep(0.05)
else:
    sys.exit("readers held the WAL throughout: it was not truncated")
con.close()
"""


def vacuum(path: Path, attempts: int = 50) -> None:
    """VACUUM the catalog and fold its WAL back in, so no freed page or WAL frame keeps a value.

    In a child process: DuckDB's sqlite extension runs only queries that return rows, and
    Python's module must not open a file DuckDB holds in this process (above). Readers in other
    processes may hold the WAL for a moment: the truncating checkpoint is retried for about 12 s,
    then WarehouseIOError (retryable). The caller lets go of the file first: a DuckDB result
    it left pending would hold a read transaction open (lake.one_row; the writer's
    vacuum_catalog)."""
    try:
        subprocess.run([sys.executable, "-c", _VACUUM, str(path), str(attempts)], check=True,
                       capture_output=True, timeout=300)
    except subprocess.CalledProcessError as error:
        detail = error.stderr.decode(errors="replace").strip().splitlines()[-1:]
        raise WarehouseIOError(f"VACUUM of {path} failed: {' '.join(detail)}",
                               path=str(path)) from None
    except subprocess.TimeoutExpired:
        raise WarehouseIOError(f"VACUUM of {path} took over 300 s", path=str(path)) from None

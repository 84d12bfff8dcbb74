"""`journey sql`: DuckDB over the current warehouse snapshot's views (SPEC 6.3) for analysts.

By default it is read-only over the documented views (SPEC 6.5): every statement passes the parse
check of `POST /v1/query` (api/sqlguard.py) and runs on its sandbox (the lake attached READ_ONLY,
no external access besides the lake's files, configuration locked), in a small prompt that runs
`;`-terminated statements and prints rich tables. `--unsafe-full-duckdb` gives the full DuckDB:
the `duckdb` CLI on PATH started with the views as its init file, else the prompt unguarded.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import duckdb
from rich.console import Console
from rich.table import Table

from api.sqlguard import QueryRefusedError, check_query, sandbox
from journey.errors import RetryableError
from warehouse.reader import WarehouseReader

PREAMBLE = "SET TimeZone = 'UTC';  -- journey's times are UTC\n"
EXIT_WORDS = frozenset({".quit", ".exit", "\\q", "quit", "exit"})


class NoSnapshotError(RetryableError):
    """The warehouse has no committed snapshot yet. Context: warehouse_dir."""


Run = Callable[[str], duckdb.DuckDBPyConnection]


def init_sql(warehouse_dir: Path, pinned: bool = True, catalog_url: str | None = None) -> str:
    """The SQL that loads the extensions offline, attaches the lake and creates the views (for
    `duckdb -init FILE`): pinned to the current snapshot, or following each newest commit."""
    reader = WarehouseReader(warehouse_dir, catalog_url)
    snap = reader.current()
    if snap is None:
        raise NoSnapshotError("no warehouse snapshot yet; start the processor (journey up) first",
                              warehouse_dir=str(warehouse_dir))
    return PREAMBLE + reader.views_sql(snap if pinned else None)


def open_views(warehouse_dir: Path, unsafe: bool = False,
               catalog_url: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the current snapshot's views: the locked sandbox of
    api/sqlguard.py unless unsafe (then the full DuckDB)."""
    con = duckdb.connect(":memory:")
    con.execute(init_sql(warehouse_dir, catalog_url=catalog_url))
    if unsafe:
        return con
    try:
        return sandbox(con)
    finally:
        con.close()


def runner(con: duckdb.DuckDBPyConnection, unsafe: bool) -> Run:
    """Executes one statement on con; unless unsafe, only a SELECT over the documented views
    (QueryRefusedError otherwise)."""
    if unsafe:
        return con.execute
    parser = duckdb.connect(":memory:")  # parses only; never sees the warehouse

    def run(sql: str) -> duckdb.DuckDBPyConnection:
        check_query(sql, parser)
        return con.execute(sql)
    return run


def render(cur: duckdb.DuckDBPyConnection, console: Console, max_rows: int = 1000) -> None:
    """Print the result of the last statement on cur as a table (at most max_rows rows)."""
    if cur.description is None:
        return
    table = Table(*[d[0] for d in cur.description], show_lines=False)
    rows = cur.fetchmany(max_rows + 1)
    for row in rows[:max_rows]:
        table.add_row(*["NULL" if v is None else str(v) for v in row])
    console.print(table)
    more = " (more not shown)" if len(rows) > max_rows else ""
    console.print(f"{min(len(rows), max_rows)} rows{more}")


def run_one(warehouse_dir: Path, sql: str, console: Console, unsafe: bool = False,
            catalog_url: str | None = None) -> None:
    """Run one query over the views and print it (read-only unless unsafe)."""
    con = open_views(warehouse_dir, unsafe, catalog_url)
    try:
        render(runner(con, unsafe)(sql), console)
    finally:
        con.close()


def repl(con: duckdb.DuckDBPyConnection, console: Console, read: Callable[[str], str],
         run: Run | None = None) -> None:
    """Read statements until EOF or `.quit` and run them with `run` (default: con.execute);
    errors are printed, never fatal."""
    execute = con.execute if run is None else run
    buffer: list[str] = []
    while True:
        try:
            line = read("journey> " if not buffer else "   ...> ")
        except (EOFError, KeyboardInterrupt):
            console.print()
            return
        if not buffer and line.strip() in EXIT_WORDS:
            return
        if not buffer and line.strip() == ".tables":
            # Our own catalog query: the guard admits no duckdb_views(), the view list is public.
            render(con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal "
                               "UNION SELECT table_name FROM duckdb_tables() WHERE database_name "
                               "= 'memory' ORDER BY 1"), console)
            continue
        buffer.append(line)
        if not line.rstrip().endswith(";"):
            continue
        sql, buffer = "\n".join(buffer), []
        try:
            render(execute(sql), console)
        except (duckdb.Error, QueryRefusedError) as error:
            console.print(f"[red]{error}[/red]")


def shell(warehouse_dir: Path, console: Console, unsafe: bool = False,
          catalog_url: str | None = None) -> int:
    """The interactive shell: read-only over the views, or with unsafe the duckdb CLI if
    installed (else the built-in prompt without the guard)."""
    cli = shutil.which("duckdb") if unsafe else None
    if cli is not None:
        with tempfile.NamedTemporaryFile("w", suffix=".sql", prefix="journey-views-") as init:
            init.write(init_sql(warehouse_dir, catalog_url=catalog_url))
            init.flush()
            return subprocess.call([cli, "-init", init.name])
    mode = ("full DuckDB" if unsafe else
            "read-only SELECTs over the views; --unsafe-full-duckdb for the full DuckDB")
    console.print(f"built-in prompt, {mode} (end statements with ';', .tables lists the views, "
                  ".quit leaves)")
    con = open_views(warehouse_dir, unsafe, catalog_url)
    try:
        repl(con, console, console.input, runner(con, unsafe))
    finally:
        con.close()
    return 0

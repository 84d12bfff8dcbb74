"""`journey sql`: DuckDB over the current warehouse snapshot's views (SPEC 6.3) for analysts.

With the `duckdb` CLI on PATH the interactive shell is that CLI started with the views as its init
file; without it, a small prompt that runs `;`-terminated statements and prints rich tables.
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

from journey.errors import RetryableError
from warehouse.reader import WarehouseReader

PREAMBLE = "SET TimeZone = 'UTC';  -- journey's times are UTC\n"
EXIT_WORDS = frozenset({".quit", ".exit", "\\q", "quit", "exit"})


class NoSnapshotError(RetryableError):
    """The warehouse has no committed snapshot yet. Context: warehouse_dir."""


def init_sql(warehouse_dir: Path) -> str:
    """The SQL that creates the current snapshot's views (for `duckdb -init FILE`)."""
    reader = WarehouseReader(warehouse_dir)
    snap = reader.current()
    if snap is None:
        raise NoSnapshotError("no warehouse snapshot yet; start the processor (journey up) first",
                              warehouse_dir=str(warehouse_dir))
    return PREAMBLE + reader.views_sql(snap)


def open_views(warehouse_dir: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the current snapshot's views."""
    con = duckdb.connect(":memory:")
    con.execute(init_sql(warehouse_dir))
    return con


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


def run_one(warehouse_dir: Path, sql: str, console: Console) -> None:
    """Run one query over the views and print it."""
    con = open_views(warehouse_dir)
    try:
        render(con.execute(sql), console)
    finally:
        con.close()


def repl(con: duckdb.DuckDBPyConnection, console: Console, read: Callable[[str], str]) -> None:
    """Read statements until EOF or `.quit`; errors are printed, never fatal."""
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
            line = "SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1;"
        buffer.append(line)
        if not line.rstrip().endswith(";"):
            continue
        sql, buffer = "\n".join(buffer), []
        try:
            render(con.execute(sql), console)
        except duckdb.Error as error:
            console.print(f"[red]{error}[/red]")


def shell(warehouse_dir: Path, console: Console) -> int:
    """The interactive shell: the duckdb CLI if installed, else the built-in prompt."""
    sql = init_sql(warehouse_dir)
    cli = shutil.which("duckdb")
    if cli is not None:
        with tempfile.NamedTemporaryFile("w", suffix=".sql", prefix="journey-views-") as init:
            init.write(sql)
            init.flush()
            return subprocess.call([cli, "-init", init.name])
    console.print("duckdb CLI not found; built-in prompt (end statements with ';', "
                  ".tables lists the views, .quit leaves)")
    con = duckdb.connect(":memory:")
    try:
        con.execute(sql)
        repl(con, console, console.input)
    finally:
        con.close()
    return 0

"""The statements a writer's transaction runs: a commit's deletes and inserts of derived rows,
Arrow rows into a lake table, and the offsets and watermark stored with them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import duckdb
import pyarrow as pa

from journey.facts import Changes
from warehouse.convert import rows_to_arrow
from warehouse.errors import CommitError
from warehouse.lake import DELETES_LOG, LAKE, ident
from warehouse.tables import ROW_SCHEMAS


def apply_changes(con: duckdb.DuckDBPyConnection, changes: Changes,
                  skip_unwritten: bool = False) -> None:
    """Run the deletes (values as Arrow, never SQL text), then insert the rows per table.

    With skip_unwritten, a delete from a table no row was ever committed to (stored_tables) is
    skipped: it has nothing to find. Only for a transaction that inserted no derived row before
    this call (a commit; not a rebuild's later chunks)."""
    stored = stored_tables(con) if skip_unwritten and changes.deletes else None
    for table, column, values in changes.deletes:
        schema = ROW_SCHEMAS.get(table)
        if schema is None or table == "models" or column not in schema.names:
            raise CommitError("cannot delete from this table or by this column", table=table,
                              column=column)
        if stored is not None and table not in stored:
            continue
        __journey_keys = pa.table({"v": pa.array(sorted(values), schema.field(column).type)})
        con.execute(f"DELETE FROM {LAKE}.{ident(table)} WHERE {ident(column)} IN "
                    "(SELECT v FROM __journey_keys)")
        del __journey_keys
    for table in changes.rows:
        _check_derived(table)
    for table, rows in changes.rows.items():
        if rows:  # one table's Arrow rows at a time
            insert(con, table, rows_to_arrow(table, rows))


def stored_tables(con: duckdb.DuckDBPyConnection) -> frozenset[str]:
    """The lake's tables that rows were ever committed to (they have a row in the catalog's
    table stats). DuckLake plans a statement on a table that never had one with a catalog query
    per column it reads, each time: 12-26 ms for a DELETE that can find nothing, where a table
    with stats is planned in about 3 ms (measured at 5M events; fixed in DuckLake after the
    1.5.5 extension, duckdb/ducklake#1313)."""
    meta = ident(f"__ducklake_metadata_{LAKE}")
    return frozenset(str(r[0]) for r in con.execute(
        f"SELECT t.table_name FROM {meta}.ducklake_table t "
        f"JOIN {meta}.ducklake_table_stats s ON s.table_id = t.table_id "
        "WHERE t.end_snapshot IS NULL").fetchall())


def log_deletes(con: duckdb.DuckDBPyConnection, changes: Changes) -> None:
    """Replace the deletes log with this commit's deletes: one row per (column, key) naming the
    tables deleted from (",customers,sessions,"), and a marker row ("", "", "") that tells a
    reader this snapshot is a logged commit. DuckLake's deletions feed would read every data
    file a commit deleted from (1.2-1.5 s for `event_stages` at 10M events); this log's rows of
    one commit are its insertions feed (api/advance.py)."""
    tables: dict[tuple[str, str], list[str]] = {}
    for table, column, values in changes.deletes:
        for value in values:
            tables.setdefault((column, value), []).append(table)
    cols, keys, names = [""], [""], [""]
    for (column, value), held in tables.items():
        cols.append(column)
        keys.append(value)
        names.append("," + ",".join(sorted(held)) + ",")
    con.execute(f"DELETE FROM {LAKE}.{DELETES_LOG}")
    insert(con, DELETES_LOG, pa.table({"col": cols, "key": keys, "tables": names}))


def _check_derived(table: str) -> None:
    if table not in ROW_SCHEMAS or table == "models":
        raise CommitError("no such derived table", table=table)


def insert_tables(con: duckdb.DuckDBPyConnection, tables: Mapping[str, pa.Table]) -> None:
    """Insert a rebuild's chunk of Arrow rows, by derived table."""
    for table, rows in tables.items():
        _check_derived(table)
        if rows.num_rows:
            insert(con, table, rows)


def insert(con: duckdb.DuckDBPyConnection, table: str, rows: pa.Table,
           order_by: str | None = None) -> None:
    """Insert Arrow rows into a lake table (by column name).

    The rows are read through DuckDB's replacement scan of this frame's local variable, not a
    registered view: a view is a catalog entry, and a dropped one stays alive (with its Arrow
    rows) until the transaction ends, so a rebuild's one long transaction kept every chunk it
    had inserted (58 MB per 200k events, tests/warehouse/test_writer.py).
    """
    columns = ", ".join(ident(n) for n in rows.schema.names)
    order = f" ORDER BY {ident(order_by)}" if order_by else ""
    __journey_rows = rows
    con.execute(f"INSERT INTO {LAKE}.{ident(table)} ({columns}) "
                f"SELECT {columns} FROM __journey_rows{order}")
    del __journey_rows


def write_meta(con: duckdb.DuckDBPyConnection, offsets: Mapping[int, int] | None,
               watermark: datetime | None, now: datetime) -> None:
    """Replace the stored offsets (when given) and the watermark and commit time."""
    if offsets is not None:
        con.execute(f"DELETE FROM {LAKE}.journey_offsets")
        insert(con, "journey_offsets", pa.table({
            "partition": pa.array(list(offsets), pa.int32()),
            "next_offset": pa.array(list(offsets.values()), pa.int64())}))
    con.execute(f"DELETE FROM {LAKE}.journey_meta")
    con.execute(f"INSERT INTO {LAKE}.journey_meta VALUES (?, ?)", [watermark, now])

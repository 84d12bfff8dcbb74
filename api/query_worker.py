"""The child process that runs `POST /v1/query` statements (SPEC 6.5 limits).

DuckDB cannot interrupt every statement (a `list_sort` of a huge list never checks) and its
memory_limit does not bound such lists, so a statement runs in a child process that the API
kills: at the timeout, or as soon as the child's resident memory passes the limit. The child is
niced and pinned to one core, so a heavy query leaves the other cores to the API.
"""

from __future__ import annotations

import base64
import os
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from multiprocessing.connection import Connection
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from api.sqlguard import VIEWS, pinned_lake, sandbox
from warehouse.reader import Snapshot

JSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC | orjson.OPT_NON_STR_KEYS
FETCH_ROWS = 256  # rows fetched at a time while the answer is measured


@dataclass(frozen=True, slots=True)
class Recipe:
    """What the child needs to rebuild the documented views of one snapshot."""

    version: int
    views: dict[str, str]  # name -> CREATE VIEW statement
    tables: dict[str, bytes]  # name -> Arrow IPC stream (views that are tables in memory)
    lake: Snapshot | None = None  # the pinned lake snapshot the views read, attached anew


def recipe(cur: duckdb.DuckDBPyConnection, version: int,
           listing: AbstractContextManager[Any] | None = None) -> Recipe:
    """The documented views of the connection `cur` as a Recipe; `listing` is held while the
    catalog is listed (api/store.py SnapshotStore.listing)."""
    with listing or nullcontext():
        views = dict(cur.execute(
            "SELECT view_name, sql FROM duckdb_views() WHERE NOT internal").fetchall())
        tables = {r[0] for r in cur.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        lake = pinned_lake(cur)
    copied: dict[str, bytes] = {}
    for name in VIEWS:
        if name not in views and name in tables:
            rows = cur.execute(f'SELECT * FROM "{name}"').arrow().read_all()
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, rows.schema) as writer:
                writer.write_table(rows)
            copied[name] = sink.getvalue().to_pybytes()
    return Recipe(version, {n: sql for n, sql in views.items() if n in VIEWS}, copied, lake)


def json_default(value: Any) -> Any:
    """JSON for the DuckDB values orjson does not know: DECIMAL, INTERVAL (seconds), BLOB."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return str(value)


def _build(plan: Recipe) -> duckdb.DuckDBPyConnection:
    source = duckdb.connect(":memory:")
    source.execute("SET GLOBAL TimeZone = 'UTC'")
    # Views over the lake name its attachment, which only sandbox() makes in this process.
    for sql in plan.views.values() if plan.lake is None else ():
        source.execute(sql)
    for name, data in plan.tables.items():
        rows = pa.ipc.open_stream(data).read_all()
        source.register("__journey_rows", rows)
        source.execute(f'CREATE TABLE "{name}" AS SELECT * FROM __journey_rows')
        source.unregister("__journey_rows")
    box = sandbox(source, plan.lake)
    source.close()
    return box


def execute(box: duckdb.DuckDBPyConnection, sql: str, limit: int, max_bytes: int,
            version: int) -> bytes:
    """The JSON answer of one statement: at most `limit` rows and about `max_bytes` bytes."""
    cur = box.cursor()
    try:
        cur.execute(sql)
        columns = [{"name": d[0], "type": str(d[1])} for d in cur.description or []]
        rows: list[bytes] = []
        size, truncated, cut_by = 0, False, None
        while not truncated and (chunk := cur.fetchmany(FETCH_ROWS)):
            for row in chunk:
                if len(rows) == limit:
                    truncated, cut_by = True, "rows"
                    break
                encoded = orjson.dumps(list(row), default=json_default, option=JSON_OPTIONS)
                if size + len(encoded) + 1 > max_bytes:
                    truncated, cut_by = True, "bytes"
                    break
                rows.append(encoded)
                size += len(encoded) + 1
    finally:
        cur.close()
    head = orjson.dumps({"columns": columns, "rows": orjson.Fragment(b"[" + b",".join(rows) + b"]"),
                         "row_count": len(rows), "truncated": truncated, "truncated_by": cut_by,
                         "version": version})
    return head


def _classify(error: duckdb.Error) -> str:
    if isinstance(error, duckdb.PermissionException):
        return "refused"
    if isinstance(error, duckdb.IOException):
        return "io"
    return "failed"


def serve(conn: Connection, max_bytes: int) -> None:
    """The child's loop: ("load", Recipe) and ("run", sql, limit) in, a reply tuple out."""
    os.nice(10)  # the API's own requests come first
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) > 1:
        os.sched_setaffinity(0, {cpus[-1]})
    box: duckdb.DuckDBPyConnection | None = None
    version = -1
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return  # the API closed its end
        try:
            if message[0] == "load":
                box, version = _build(message[1]), message[1].version
                conn.send(("ok", b""))
            elif box is not None:
                conn.send(("ok", execute(box, message[1], message[2], max_bytes, version)))
            else:
                conn.send(("error", "failed", "no snapshot loaded", ""))
        except duckdb.Error as error:
            conn.send(("error", _classify(error), str(error), str(error)))

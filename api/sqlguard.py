"""Read-only SQL for analysts (SPEC 6.2 `POST /v1/query`), guarded twice: a parse check admits one
SELECT over the documented views and no table function, and the query then runs on a separate
DuckDB that attaches the same DuckLake snapshot READ_ONLY, with file access limited to the lake's
data directory and network, extension and configuration access switched off."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

from api.errors import ApiError
from warehouse.lake import LAKE, Location
from warehouse.reader import Snapshot, register_views

# The views of SPEC 6.3 that docs/analysts.md documents; nothing else may be named in a query.
VIEWS: tuple[str, ...] = (
    "events", "sessions", "stage_entries", "customers", "identities", "event_stages",
    "transitions", "surveys", "models", "meta", "account_events", "identity_conflicts",
    "account_members", "accounts", "account_stage_entries",
)
MAX_SQL_CHARS = 100_000

# The JSON tree of json_serialize_sql: query nodes carry "modifiers", expressions "class", table
# references "sample". Only these kinds of query node and table reference are admitted.
QUERY_NODES = frozenset({"SELECT_NODE", "SET_OPERATION_NODE", "RECURSIVE_CTE_NODE", "CTE_NODE"})
TABLE_REFS = frozenset({"BASE_TABLE", "JOIN", "SUBQUERY", "EXPRESSION_LIST", "EMPTY", "PIVOT"})
# Table functions that only compute from their arguments (which are checked like the rest).
PURE_TABLE_FUNCTIONS = frozenset({"unnest", "range", "generate_series"})


class QueryRefusedError(ApiError):
    """The SQL is not one read-only SELECT over the documented views. Context: reason, ..."""

    code = "query_refused"


class QueryFailedError(ApiError):
    """DuckDB rejected the (admitted) query: unknown column, bad cast, ... Context: detail."""

    code = "query_error"


class QueryTimeoutError(ApiError):
    """The query ran longer than JOURNEY_QUERY_TIMEOUT_S and was interrupted. Context: timeout_s."""

    code = "query_timeout"


def check_query(sql: str, parser: duckdb.DuckDBPyConnection) -> None:
    """QueryRefusedError unless `sql` is a single SELECT whose tables are documented views (or its
    own CTEs) and that calls no table function; `parser` is any DuckDB connection."""
    if not sql.strip():
        raise QueryRefusedError("the query is empty", reason="empty")
    if len(sql) > MAX_SQL_CHARS:
        raise QueryRefusedError(f"the query is longer than {MAX_SQL_CHARS} characters",
                                reason="too_long", chars=len(sql))
    try:
        statements = parser.extract_statements(sql)
    except duckdb.Error as error:
        raise QueryRefusedError("the query does not parse", reason="syntax",
                                detail=str(error)) from None
    if len(statements) != 1:
        raise QueryRefusedError("send exactly one statement", reason="statements",
                                statements=len(statements))
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise QueryRefusedError(f"only SELECT is allowed, not {kind.name}", reason="statement_type",
                                statement_type=kind.name)
    row = parser.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
    tree: dict[str, Any] = json.loads(row[0]) if row else {"error": True}
    if tree.get("error") or len(tree.get("statements", [])) != 1:
        # e.g. PRAGMA, which the parser rewrites into a SELECT of a pragma table function.
        raise QueryRefusedError("only a plain SELECT is allowed", reason="statement_type",
                                detail=tree.get("error_message"))
    _walk(tree["statements"][0]["node"], frozenset())


def _walk(obj: Any, ctes: frozenset[str]) -> None:
    """Check every node of the tree; CTE names are visible after their definition."""
    if isinstance(obj, list):
        for item in obj:
            _walk(item, ctes)
        return
    if not isinstance(obj, dict):
        return
    cte_map = obj.get("cte_map")
    if isinstance(cte_map, dict):
        for entry in cte_map.get("map", []):
            ctes = ctes | {str(entry["key"]).lower()}  # a recursive CTE names itself
            _walk(entry["value"], ctes)
    kind = obj.get("type")
    if "modifiers" in obj and kind not in QUERY_NODES:
        raise QueryRefusedError(f"{kind} is not allowed", reason="query_node", node=kind)
    if "sample" in obj and "class" not in obj and "modifiers" not in obj:
        _check_table_ref(obj, ctes)
    for key, value in obj.items():
        if key != "cte_map":
            _walk(value, ctes)


def _check_table_ref(ref: dict[str, Any], ctes: frozenset[str]) -> None:
    kind = ref.get("type")
    if kind == "TABLE_FUNCTION":
        function = ref.get("function") or {}
        name = function.get("function_name")
        qualified = function.get("schema") or function.get("catalog")
        if name in PURE_TABLE_FUNCTIONS and not qualified:
            return
        raise QueryRefusedError(f"table functions such as {name}() are not allowed; query the "
                                "documented views", reason="table_function", function=name)
    if kind not in TABLE_REFS:
        raise QueryRefusedError(f"{kind} is not allowed", reason="table_ref", table_ref=kind)
    if kind != "BASE_TABLE":
        return
    name = str(ref.get("table_name", ""))
    schema, catalog = ref.get("schema_name") or "", ref.get("catalog_name") or ""
    local = not schema and not catalog and name.lower() in ctes
    documented = schema.lower() in ("", "main") and not catalog and name.lower() in VIEWS
    if ref.get("at_clause"):
        raise QueryRefusedError("AT (time travel) is not allowed", reason="at_clause", table=name)
    if not (local or documented):
        shown = ".".join(p for p in (catalog, schema, name) if p)
        raise QueryRefusedError(f"unknown table {shown!r}; the views are {', '.join(VIEWS)}",
                                reason="table", table=shown, known=list(VIEWS))


def sandbox(source: duckdb.DuckDBPyConnection,
            lake: Snapshot | None = None) -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB with the documented views of `source`: the lake snapshot (`lake`,
    else the one `source` has attached) is attached READ_ONLY, tables of `source` are copied over
    its views, and the connection may then read only the lake's data directory and change no
    setting. A `source` in another process (api/query_worker.py) has no lake: pass `lake`."""
    con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False,
                                             "autoload_known_extensions": False})
    con.execute("SET GLOBAL TimeZone = 'UTC'")
    views = dict(source.execute(
        "SELECT view_name, sql FROM duckdb_views() WHERE NOT internal").fetchall())
    tables = {r[0] for r in source.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = 'memory'").fetchall()}
    directories: list[str] = []
    pinned = lake if lake is not None else pinned_lake(source)
    if pinned is not None:
        register_views(con, pinned)
        directories.append(str(pinned.location.data_path) + "/")
    for name in VIEWS:
        if name in tables:
            rows = source.execute(f'SELECT * FROM "{name}"').to_arrow_table()
            con.register("__journey_rows", rows)
            # The API store materialises the small views; its copy replaces the lake's view.
            con.execute(f'DROP VIEW IF EXISTS "{name}"')
            con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM __journey_rows')
            con.unregister("__journey_rows")
        elif name in views and pinned is None:
            con.execute(views[name])  # a test's hand-made view over no lake
    # Reading the lake's own files stays allowed; the parse check already refuses COPY, which
    # DuckDB would still let overwrite an allowed path.
    con.execute(f"SET allowed_directories = [{', '.join(_literal(p) for p in directories)}]")
    for setting in ("enable_external_access", "autoinstall_known_extensions",
                    "autoload_known_extensions", "allow_community_extensions",
                    "python_enable_replacements", "lock_configuration"):
        value = "true" if setting == "lock_configuration" else "false"
        con.execute(f"SET {setting} = {value}")
    return con


def pinned_lake(con: duckdb.DuckDBPyConnection) -> Snapshot | None:
    """The lake snapshot a connection's views were registered over (its meta.version), if any."""
    row = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = ? AND "
                      "type = 'ducklake'", [LAKE]).fetchone()
    if row is None:
        return None
    data = con.execute(f"SELECT value FROM ducklake_options('{LAKE}') WHERE option_name = "
                       "'data_path'").fetchone()
    version = con.execute("SELECT max(version) FROM meta").fetchone()
    if data is None or version is None or version[0] is None:
        return None
    return Snapshot(Location(str(row[0]), Path(str(data[0])).resolve()), int(version[0]))


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"

"""POST /v1/query (read-only SQL over the documented views), GET /v1/models and
GET /v1/traits/{name}/values (the persona selector's choices)."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import duckdb
import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from api.auth import requires
from api.errors import BadParameterError, UnknownTraitError
from api.routes import ApiRoute, cached_answer, int_param
from api.settings import ApiSettings
from api.sqlguard import (
    QueryFailedError,
    QueryRefusedError,
    QueryTimeoutError,
    check_query,
    sandbox,
)
from api.store import SnapshotStore

JSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC | orjson.OPT_NON_STR_KEYS


class QueryRequest(BaseModel):
    """The body of POST /v1/query."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sql: str = Field(description="One SELECT over the documented views (docs/analysts.md).")
    limit: int | None = Field(default=None, ge=1, description="Most rows to return.")


def _json_default(value: Any) -> Any:
    """JSON for the DuckDB values orjson does not know: DECIMAL, INTERVAL (seconds), BLOB."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return str(value)


class QueryRunner:
    """Runs admitted SQL on a sandbox of the store's current snapshot, rebuilt when it changes."""

    def __init__(self, store: SnapshotStore, timeout_s: float, max_rows: int) -> None:
        self._store = store
        self._timeout_s = timeout_s
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._version: int | None = None
        self._sandbox: duckdb.DuckDBPyConnection | None = None

    def _current(self) -> tuple[int, duckdb.DuckDBPyConnection]:
        with self._store.cursor() as (bound, cur), self._lock:
            if self._sandbox is None or self._version != bound.version:
                # Running queries keep the old sandbox alive through their own cursors.
                self._sandbox, self._version = sandbox(cur), bound.version
            return bound.version, self._sandbox

    def run(self, sql: str, limit: int | None = None) -> dict[str, Any]:
        """{"columns", "rows", "row_count", "truncated", "version"} of one admitted SELECT."""
        version, box = self._current()
        cur = box.cursor()
        try:
            check_query(sql, cur)
            return self._execute(cur, sql, min(limit or self.max_rows, self.max_rows), version)
        finally:
            cur.close()

    def _execute(self, cur: duckdb.DuckDBPyConnection, sql: str, limit: int,
                 version: int) -> dict[str, Any]:
        timer = threading.Timer(self._timeout_s, cur.interrupt)
        timer.start()
        try:
            cur.execute(sql)
            rows = cur.fetchmany(limit + 1)
        except duckdb.InterruptException:
            raise QueryTimeoutError(f"the query ran longer than {self._timeout_s:g}s and was "
                                    "stopped", timeout_s=self._timeout_s) from None
        except duckdb.PermissionException as error:
            raise QueryRefusedError("the query needs access that is not allowed",
                                    reason="permission", detail=str(error)) from None
        except duckdb.IOException:
            raise  # a snapshot file went away: the routes answer a retryable 503
        except duckdb.Error as error:
            raise QueryFailedError(f"DuckDB could not run the query: {error}",
                                   detail=str(error)) from None
        finally:
            timer.cancel()
        columns = [{"name": d[0], "type": str(d[1])} for d in cur.description or []]
        truncated = len(rows) > limit
        rows = rows[:limit]
        return {"columns": columns, "rows": [list(r) for r in rows], "row_count": len(rows),
                "truncated": truncated, "version": version}


def parse_request(body: bytes, max_rows: int) -> QueryRequest:
    """The JSON body as a QueryRequest; BadParameterError naming the problem."""
    try:
        request = QueryRequest.model_validate_json(body or b"{}")
    except ValidationError as error:
        problems = [f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in error.errors()]
        usage = 'send JSON {"sql": "SELECT ...", "limit": N}; '
        raise BadParameterError(usage + "; ".join(problems), param="body",
                                problems=problems) from None
    if request.limit is not None and request.limit > max_rows:
        raise BadParameterError(f"limit={request.limit} is more than {max_rows} "
                                "(JOURNEY_QUERY_MAX_ROWS)", param="limit", value=request.limit)
    return request


def models(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Every active stage model: its name, conversion stage and stages in order (by name)."""
    rows = cur.execute(
        "SELECT model, list(stage ORDER BY stage_index), "
        "first(stage ORDER BY stage_index) FILTER (WHERE conversion_stage) "
        "FROM models GROUP BY model ORDER BY model").fetchall()
    return [{"model": m, "conversion_stage": conv, "stages": stages} for m, stages, conv in rows]


def trait_values(cur: duckdb.DuckDBPyConnection, name: str, top: int) -> dict[str, Any]:
    """The `top` most common values of a trait over customers (customers descending, value)."""
    path = "/" + name.replace("~", "~0").replace("/", "~1")  # a JSON pointer: any name is safe
    rows = cur.execute(
        "SELECT json_extract_string(traits, $p) AS v, count(*) AS n FROM customers "
        "WHERE json_exists(traits, $p) GROUP BY v ORDER BY n DESC, v NULLS LAST LIMIT $top",
        {"p": path, "top": top}).fetchall()
    if not rows:
        known = [r[0] for r in cur.execute(
            "SELECT DISTINCT unnest(json_keys(traits)) AS k FROM customers ORDER BY k LIMIT 100"
        ).fetchall()]
        raise UnknownTraitError(f"no customer has the trait {name!r}", trait=name, known=known)
    return {"trait": name, "values": [{"value": v, "customers": n} for v, n in rows]}


def query_router(settings: ApiSettings, store: SnapshotStore) -> APIRouter:
    """POST /v1/query, GET /v1/models and GET /v1/traits/{name}/values, behind bearer tokens."""

    # SPEC 6.1: free SQL reaches every profile, so it needs `pii`; the selectors need `read`.
    read = [Depends(requires(settings.api_tokens, "read"))]
    pii = [Depends(requires(settings.api_tokens, "pii"))]
    router = APIRouter(route_class=ApiRoute)
    runner = QueryRunner(store, settings.query_timeout_s, settings.query_max_rows)

    def answer(request: Request, compute: Callable[[duckdb.DuckDBPyConnection], Any]) -> Response:
        return cached_answer(store, request, compute)

    body_schema = {"application/json": {"schema": QueryRequest.model_json_schema()}}

    @router.post("/v1/query", dependencies=pii,
                 openapi_extra={"requestBody": {"required": True, "content": body_schema}})
    async def post_query(request: Request) -> Response:
        """Run one read-only SELECT over the documented views."""
        body = parse_request(await request.body(), runner.max_rows)
        result = await run_in_threadpool(runner.run, body.sql, body.limit)
        return Response(orjson.dumps(result, default=_json_default, option=JSON_OPTIONS),
                        media_type="application/json")

    @router.get("/v1/models", dependencies=read)
    def get_models(request: Request) -> Response:
        """The active stage models and their stages in order."""
        return answer(request, models)

    @router.get("/v1/traits/{name}/values", dependencies=read)
    def get_trait_values(request: Request, name: str) -> Response:
        """The most common values of a customer trait (for persona filters)."""
        top = int_param(request.query_params, "top", 20, 1, 1000)
        return answer(request, lambda cur: trait_values(cur, name, top))

    return router

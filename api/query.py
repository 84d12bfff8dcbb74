"""POST /v1/query (read-only SQL over the documented views), GET /v1/models and
GET /v1/traits/{name}/values (the persona selector's choices)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

import duckdb
import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from api import csvout
from api.auth import requires
from api.errors import BadParameterError, UnknownTraitError
from api.model_version import MODELS_SQL, model_version
from api.query_process import Limits, QueryBusyError, QueryProcess
from api.query_worker import Recipe, recipe
from api.routes import ApiRoute, cached_answer, int_param
from api.settings import ApiSettings
from api.sqlguard import check_query
from api.store import SnapshotStore


class QueryRequest(BaseModel):
    """The body of POST /v1/query."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sql: str = Field(description="One SELECT over the documented views (docs/analysts.md).")
    # Bounded so that a huge number fails validation instead of overflowing on the way out.
    limit: int | None = Field(default=None, ge=1, le=2**31, description="Most rows to return.")


class QueryRunner:
    """Checks SQL here and runs it in child processes (api/query_process.py) on the views of the
    store's current snapshot; `workers` statements run at once, later ones wait their turn."""

    def __init__(self, store: SnapshotStore, limits: Limits, max_rows: int,
                 workers: int = 1) -> None:
        self._store = store
        self._limits = limits
        self.max_rows = max_rows
        self._idle: queue.Queue[QueryProcess] = queue.Queue()
        for _ in range(workers):
            self._idle.put(QueryProcess(limits))
        self._parser = duckdb.connect(":memory:")  # parses only; never sees the warehouse
        self._lock = threading.Lock()
        self._recipe: Recipe | None = None

    def _plan(self) -> Recipe:
        with self._store.cursor() as (bound, cur), self._lock:
            if self._recipe is None or self._recipe.version != bound.version:
                self._recipe = recipe(cur, bound.version, self._store.listing)
            return self._recipe

    def run(self, sql: str, limit: int | None = None) -> bytes:
        """The JSON answer {"columns", "rows", "row_count", "truncated", "truncated_by",
        "version"} of one admitted SELECT."""
        parser = self._parser.cursor()
        try:
            check_query(sql, parser)
        finally:
            parser.close()
        plan = self._plan()
        try:
            worker = self._idle.get(timeout=self._limits.timeout_s)
        except queue.Empty:
            raise QueryBusyError("every query process is busy; retry later") from None
        try:
            return worker.run(plan, sql, min(limit or self.max_rows, self.max_rows))
        finally:
            self._idle.put(worker)


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
    """Every active stage model: its name, version, conversion stage and stages in order."""
    return [{"model": m, "version": model_version(stages, conv, lapse),
             "conversion_stage": conv, "stages": stages}
            for m, stages, conv, lapse in cur.execute(MODELS_SQL).fetchall()]


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
    limits = Limits(settings.query_timeout_s, settings.query_memory_mb * 2**20,
                    settings.query_max_bytes)
    runner = QueryRunner(store, limits, settings.query_max_rows, settings.query_workers)

    def answer(request: Request, compute: Callable[[duckdb.DuckDBPyConnection], Any]) -> Response:
        return cached_answer(store, request, compute)

    body_schema = {"application/json": {"schema": QueryRequest.model_json_schema()}}

    @router.post("/v1/query", dependencies=pii,
                 openapi_extra={"requestBody": {"required": True, "content": body_schema}})
    async def post_query(request: Request) -> Response:
        """Run one read-only SELECT over the documented views."""
        body = parse_request(await request.body(), runner.max_rows)
        answer = await run_in_threadpool(runner.run, body.sql, body.limit)
        if csvout.wants_csv(request.headers.get("accept")):
            # SPEC 6.2 CSV: the rows under a header of the column names; whether the answer was
            # cut moves to a header, as the CSV has no room for it.
            result = orjson.loads(answer)
            truncated = "true" if result.get("truncated") else "false"
            return Response(csvout.table("/v1/query", result), media_type=csvout.CSV,
                            headers={"X-Journey-Truncated": truncated})
        return Response(answer, media_type="application/json")

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

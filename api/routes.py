"""The analytics endpoints of SPEC 6.2: parse and check parameters, then call one metric."""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import duckdb
import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute

from api import csvout
from api.auth import requires
from api.errors import (
    ApiError,
    BadParameterError,
    CustomerNotFoundError,
    NotReadyError,
    SnapshotReadError,
    UnauthorizedError,
)
from api.etag import make_etag, matches
from api.metrics import (
    accounts,
    attribution,
    cohorts,
    compare,
    conflicts,
    customers,
    dropoff,
    funnel,
    journey_map,
    kpis,
    paths,
    sessions,
    timeseries,
    transitions,
)
from api.metrics.filters import (
    TRAIT_PREFIX,
    CustomerFilter,
    check_traits,
    load_model,
    parse_channel,
    parse_filter,
    parse_time,
)
from api.openapi_spec import operation
from api.ops import LATENCY, REQUESTS
from api.settings import ApiSettings
from api.store import Bound, SnapshotStore
from processor import erasure

Params = Mapping[str, str]
ERASE_TIMEOUT_S = 60.0  # a DELETE waits this long for the processor to apply the erasure
Compute = Callable[[duckdb.DuckDBPyConnection, Params], Any]


def error_response(error: ApiError | NotReadyError | SnapshotReadError) -> Response:
    """An error as JSON: {"error": code, "message", ...context}."""
    body = {"error": error.code, "message": error.message, **error.context}
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(error, UnauthorizedError) else None
    return Response(orjson.dumps(body), error.status, headers, media_type="application/json")


class ApiRoute(APIRoute):
    """Renders API errors as JSON and records request count and latency per endpoint."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()
        endpoint = self.path

        async def handler(request: Request) -> Response:
            started = time.perf_counter()
            try:
                response = await original(request)
            except (ApiError, NotReadyError, SnapshotReadError) as error:
                response = error_response(error)
            except duckdb.IOException as error:
                response = error_response(SnapshotReadError(
                    "a file of the warehouse snapshot could not be read; retry", detail=str(error)))
            REQUESTS.labels(endpoint, str(response.status_code)).inc()
            LATENCY.labels(endpoint).observe(time.perf_counter() - started)
            return response

        return handler


def int_param(q: Params, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter in [low, high]; BadParameterError otherwise."""
    raw = q.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise BadParameterError(f"{name}={raw!r} must be an integer in [{low}, {high}]",
                                param=name, value=raw)
    return value


def choice_param(q: Params, name: str, default: str, allowed: tuple[str, ...]) -> str:
    """A query parameter that must be one of `allowed`."""
    value = q.get(name) or default
    if value not in allowed:
        raise BadParameterError(f"{name}={value!r} must be one of {', '.join(allowed)}",
                                param=name, value=value, known=list(allowed))
    return value


def metric(fn: Callable[..., Any], *extra: Callable[[Params], Any]) -> Compute:
    """fn(cur, model, customer filter, *values parsed from the query) as a Compute."""

    def compute(cur: duckdb.DuckDBPyConnection, q: Params) -> Any:
        args = [get(q) for get in extra]
        model = load_model(cur, q.get("model") or "default")
        f = parse_filter(q)
        check_traits(cur, f)
        return fn(cur, model, f, *args)

    return compute


def get_timeseries(cur: duckdb.DuckDBPyConnection, q: Params) -> Any:
    """/v1/timeseries: from/to bound the events here, not first_seen; traits pick customers."""
    since, until = parse_time("from", q.get("from")), parse_time("to", q.get("to"))
    channel = parse_channel(q.get("channel"))
    f = CustomerFilter(traits=parse_filter(
        {k: v for k, v in q.items() if k.startswith(TRAIT_PREFIX)}).traits)
    check_traits(cur, f)
    model = load_model(cur, q.get("model") or "default")
    return timeseries.timeseries(cur, model, f, since, until, channel)


def get_sessions(cur: duckdb.DuckDBPyConnection, q: Params) -> Any:
    """/v1/sessions: from/to bound the session start."""
    since, until = parse_time("from", q.get("from")), parse_time("to", q.get("to"))
    return sessions.session_stats(cur, since, until, parse_channel(q.get("channel")))


def side(q: Params, name: str) -> CustomerFilter:
    """Selection `name` of /v1/compare: its `name.from`, `name.to`, `name.channel`,
    `name.trait.X` parameters as a filter (errors name the prefixed parameter)."""
    prefix = name + "."
    try:
        return parse_filter({k[len(prefix):]: v for k, v in q.items() if k.startswith(prefix)})
    except BadParameterError as error:
        param = prefix + str(error.context.get("param", ""))
        raise BadParameterError(f"selection {name}: {error.message}",
                                **{**error.context, "param": param}) from None


def get_compare(cur: duckdb.DuckDBPyConnection, q: Params) -> Any:
    """/v1/compare: selections a and b, each as the funnel's from/to/channel/trait.X."""
    a, b = side(q, "a"), side(q, "b")
    model = load_model(cur, q.get("model") or "default")
    check_traits(cur, a)
    check_traits(cur, b)
    return compare.compare(cur, model, a, b)


def get_funnel(cur: duckdb.DuckDBPyConnection, q: Params) -> Any:
    """/v1/funnel: over customers, or with level=account over B2B accounts (SPEC 5.1)."""
    level = choice_param(q, "level", "customer", ("customer", "account"))
    if level == "account":
        return accounts.account_funnel(cur, load_model(cur, q.get("model") or "default"),
                                       parse_filter(q))
    return metric(funnel.funnel)(cur, q)


# The model-level views a dashboard polls; computed for every model when a snapshot arrives.
WARMED: dict[str, Compute] = {
    "/v1/funnel": get_funnel,
    "/v1/kpis": metric(kpis.kpis),
    "/v1/journey-map": metric(journey_map.journey_map),
    "/v1/dropoff": metric(dropoff.dropoff),
    "/v1/compare": get_compare,
}
COMPUTES: dict[str, Compute] = {
    **WARMED,
    "/v1/transitions": metric(transitions.transitions),
    "/v1/attribution": metric(
        attribution.attribution,
        lambda q: choice_param(q, "method", "last_touch", attribution.METHODS),
        lambda q: choice_param(q, "by", "channel", attribution.BYS),
    ),
    "/v1/cohorts": metric(cohorts.cohorts, lambda q: int_param(q, "weeks", 12, 1, 104)),
    "/v1/paths": metric(
        paths.paths,
        lambda q: choice_param(q, "by", "stage", ("stage", "event")),
        lambda q: int_param(q, "steps", 4, 1, 20),
        lambda q: int_param(q, "top", 10, 1, 1000),
    ),
    "/v1/timeseries": get_timeseries,
    "/v1/sessions": get_sessions,
}


def cache_key(path: str, params: list[tuple[str, str]]) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The result-cache key of a request (the snapshot version is added by the store)."""
    return (path, tuple(sorted(params)))


def template(request: Request) -> str:
    """The path template of the route serving the request (e.g. /v1/customers/{key}/events)."""
    return str(getattr(request.scope.get("route"), "path", request.url.path))


def cached_answer(
    store: SnapshotStore, request: Request, compute: Callable[[duckdb.DuckDBPyConnection], Any]
) -> Response:
    """compute's JSON on the current snapshot, cached per version, with ETag and 304; CSV of
    the endpoint's table instead when the request accepts text/csv (api.csvout)."""
    as_csv = csvout.wants_csv(request.headers.get("accept")) and template(request) in csvout.TABLES
    # A representation of its own: its own ETag and cache entry ('#' is never in a path).
    path = request.url.path + ("#csv" if as_csv else "")
    with store.cursor() as (bound, cur):
        params = request.query_params.multi_items()
        etag = make_etag(bound.version, path, params)
        headers = {"ETag": etag, "Cache-Control": "no-cache", "Vary": "Accept"}
        if matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        key = cache_key(path, params)
        if as_csv:
            body = store.cached(bound.version, key,
                                lambda: csvout.table(template(request), compute(cur)) or b"")
            return Response(body, media_type=csvout.CSV, headers=headers)
        body = store.cached(bound.version, key, lambda: orjson.dumps(compute(cur)))
        return Response(body, media_type="application/json", headers=headers)


def api_router(settings: ApiSettings, store: SnapshotStore) -> APIRouter:
    """GET /v1/* analytics endpoints, behind scoped bearer tokens, with ETag/304."""

    # SPEC 6.1: aggregates need `read`; one customer's profile and events need `pii`.
    read = [Depends(requires(settings.api_tokens, "read"))]
    pii = [Depends(requires(settings.api_tokens, "pii"))]
    admin = [Depends(requires(settings.api_tokens, "admin"))]
    router = APIRouter(route_class=ApiRoute)

    def answer(request: Request, compute: Callable[[duckdb.DuckDBPyConnection], Any]) -> Response:
        return cached_answer(store, request, compute)

    def warm(bound: Bound) -> None:
        cur = bound.con.cursor()
        try:
            names = [r[0] for r in cur.execute("SELECT DISTINCT model FROM models").fetchall()]
            for path, compute in WARMED.items():
                for params in [[], *([("model", name)] for name in names)]:
                    # The store waits for this before it moves to the next snapshot: under a
                    # steady stream, warming each one delayed the next by its whole warm-up
                    # (README, "Performance": freshness). Requests compute what is left.
                    if store.superseded(bound):
                        return
                    body = orjson.dumps(compute(cur, dict(params)))
                    store.put(bound.version, cache_key(path, params), body)
        finally:
            cur.close()

    if settings.warm_cache:
        store.on_snapshot(warm)

    def endpoint(compute: Compute) -> Callable[[Request], Response]:
        def get(request: Request) -> Response:
            return answer(request, lambda cur: compute(cur, request.query_params))
        return get

    for path, compute in COMPUTES.items():
        router.add_api_route(path, endpoint(compute), methods=["GET"], dependencies=read,
                             openapi_extra=operation(path))

    @router.get("/v1/customers/{key}/events", dependencies=pii,
                openapi_extra=operation("/v1/customers/{key}/events"))
    def get_customer_events(request: Request, key: str) -> Response:
        q = request.query_params
        limit = int_param(q, "limit", min(1000, settings.events_limit), 1, settings.events_limit)
        offset = int_param(q, "offset", 0, 0, 2**62)
        return answer(request, lambda cur: customers.customer_events(cur, key, limit, offset))

    @router.get("/v1/customers/{key}", dependencies=pii,
                openapi_extra=operation("/v1/customers/{key}"))
    def get_customer(request: Request, key: str) -> Response:
        model = request.query_params.get("model") or "default"
        return answer(request, lambda cur: customers.customer(cur, load_model(cur, model), key))

    # Declared before /v1/accounts/{group_id}: the list is its own route, never a group id "".
    @router.get("/v1/accounts", dependencies=read, openapi_extra=operation("/v1/accounts"))
    def get_accounts(request: Request) -> Response:
        q = request.query_params
        limit = int_param(q, "limit", 1000, 1, 100_000)
        offset = int_param(q, "offset", 0, 0, 2**62)
        return answer(request, lambda cur: accounts.account_list(
            cur, load_model(cur, q.get("model") or "default"), limit, offset))

    @router.get("/v1/accounts/{group_id}", dependencies=read,
                openapi_extra=operation("/v1/accounts/{group_id}"))
    def get_account(request: Request, group_id: str) -> Response:
        model = request.query_params.get("model") or "default"
        return answer(request, lambda cur: accounts.account(cur, load_model(cur, model), group_id))

    @router.get("/v1/identity/conflicts", dependencies=pii,
                openapi_extra=operation("/v1/identity/conflicts"))
    def get_conflicts(request: Request) -> Response:
        q = request.query_params
        limit = int_param(q, "limit", 1000, 1, 100_000)
        offset = int_param(q, "offset", 0, 0, 2**62)
        return answer(request, lambda cur: conflicts.conflicts(cur, limit, offset))

    @router.delete("/v1/customers/{key}", dependencies=admin)
    def delete_customer(key: str) -> Response:
        """SPEC 2.4: 200 once the customer is erased from every store; 404 if no one has key."""
        result = erasure.request(settings, key, ERASE_TIMEOUT_S)
        if result is None:
            raise NotReadyError("the erasure is queued but not applied yet (is the processor "
                                "running?); it will be applied: retry to get its answer", key=key)
        if result["status"] == "failed":
            raise SnapshotReadError(f"the erasure failed: {result['message']}; retry", key=key)
        if result["status"] != "erased":
            raise CustomerNotFoundError(f"no customer has the identity key {key!r}", key=key)
        # Serve the snapshot that no longer holds the customer before answering.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            bound = store.refresh(force=True)
            if bound is not None and bound.version >= int(result["version"]):
                break
            time.sleep(0.05)
        return Response(orjson.dumps(result), media_type="application/json")

    return router

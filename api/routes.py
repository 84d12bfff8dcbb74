"""The analytics endpoints of SPEC 6.2: parse and check parameters, then call one metric."""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Any

import duckdb
import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute

from api.auth import check_bearer
from api.errors import ApiError, BadParameterError, NotReadyError, UnauthorizedError
from api.etag import make_etag, matches
from api.metrics import (
    attribution,
    cohorts,
    customers,
    funnel,
    journey_map,
    kpis,
    paths,
    sessions,
    timeseries,
    transitions,
)
from api.metrics.filters import (
    CustomerFilter,
    check_traits,
    load_model,
    parse_channel,
    parse_filter,
    parse_time,
)
from api.ops import LATENCY, REQUESTS
from api.settings import ApiSettings
from api.store import SnapshotStore

Compute = Callable[[duckdb.DuckDBPyConnection], Any]


def error_response(error: ApiError | NotReadyError) -> Response:
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
            except (ApiError, NotReadyError) as error:
                response = error_response(error)
            REQUESTS.labels(endpoint, str(response.status_code)).inc()
            LATENCY.labels(endpoint).observe(time.perf_counter() - started)
            return response

        return handler


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter in [low, high]; BadParameterError otherwise."""
    raw = request.query_params.get(name)
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


def choice_param(request: Request, name: str, default: str, allowed: tuple[str, ...]) -> str:
    """A query parameter that must be one of `allowed`."""
    value = request.query_params.get(name) or default
    if value not in allowed:
        raise BadParameterError(f"{name}={value!r} must be one of {', '.join(allowed)}",
                                param=name, value=value, known=list(allowed))
    return value


def api_router(settings: ApiSettings, store: SnapshotStore) -> APIRouter:
    """GET /v1/* analytics endpoints, behind bearer tokens, with ETag/304."""

    def auth(request: Request) -> None:
        check_bearer(request.headers.get("authorization"), settings.api_tokens)

    router = APIRouter(route_class=ApiRoute, dependencies=[Depends(auth)])

    def answer(request: Request, compute: Compute) -> Response:
        with store.cursor() as (bound, cur):
            params = request.query_params.multi_items()
            etag = make_etag(bound.version, request.url.path, params)
            headers = {"ETag": etag, "Cache-Control": "no-cache"}
            if matches(request.headers.get("if-none-match"), etag):
                return Response(status_code=304, headers=headers)
            key = (request.url.path, tuple(sorted(params)))
            body = store.cached(bound.version, key, lambda: orjson.dumps(compute(cur)))
            return Response(body, media_type="application/json", headers=headers)

    def filtered(request: Request, cur: duckdb.DuckDBPyConnection) -> CustomerFilter:
        f = parse_filter(request.query_params)
        check_traits(cur, f)
        return f

    def model_of(request: Request, cur: duckdb.DuckDBPyConnection) -> Any:
        return load_model(cur, request.query_params.get("model") or "default")

    def metric(fn: Callable[..., Any], *extra: Callable[[Request], Any]) -> Callable[..., Any]:
        """An endpoint computing fn(cur, model, filter, *extra values parsed from the request)."""
        def endpoint(request: Request) -> Response:
            args = [get(request) for get in extra]  # parse before touching the data
            return answer(request, lambda cur: fn(
                cur, model_of(request, cur), filtered(request, cur), *args))
        return endpoint

    router.add_api_route("/v1/funnel", metric(funnel.funnel), methods=["GET"])
    router.add_api_route("/v1/kpis", metric(kpis.kpis), methods=["GET"])
    router.add_api_route("/v1/transitions", metric(transitions.transitions), methods=["GET"])
    router.add_api_route("/v1/journey-map", metric(journey_map.journey_map), methods=["GET"])
    router.add_api_route("/v1/attribution", metric(
        attribution.attribution,
        lambda r: choice_param(r, "method", "last_touch", attribution.METHODS),
        lambda r: choice_param(r, "by", "channel", attribution.BYS),
    ), methods=["GET"])
    router.add_api_route("/v1/cohorts", metric(
        cohorts.cohorts, lambda r: int_param(r, "weeks", 12, 1, 104)), methods=["GET"])
    router.add_api_route("/v1/paths", metric(
        paths.paths,
        lambda r: choice_param(r, "by", "stage", ("stage", "event")),
        lambda r: int_param(r, "steps", 4, 1, 20),
        lambda r: int_param(r, "top", 10, 1, 1000),
    ), methods=["GET"])

    @router.get("/v1/timeseries")
    def get_timeseries(request: Request) -> Response:
        q = request.query_params
        since, until = parse_time("from", q.get("from")), parse_time("to", q.get("to"))
        channel = parse_channel(q.get("channel"))
        # from/to bound the events here, not first_seen: only the trait filters select customers.
        every = CustomerFilter(traits=parse_filter(
            {k: v for k, v in q.items() if k.startswith("trait.")}).traits)

        def compute(cur: duckdb.DuckDBPyConnection) -> Any:
            check_traits(cur, every)
            model = model_of(request, cur)
            return timeseries.timeseries(cur, model, every, since, until, channel)

        return answer(request, compute)

    @router.get("/v1/sessions")
    def get_sessions(request: Request) -> Response:
        q = request.query_params
        since, until = parse_time("from", q.get("from")), parse_time("to", q.get("to"))
        channel = parse_channel(q.get("channel"))
        return answer(request, lambda cur: sessions.session_stats(cur, since, until, channel))

    @router.get("/v1/customers/{key}/events")
    def get_customer_events(request: Request, key: str) -> Response:
        limit = int_param(request, "limit", min(1000, settings.events_limit), 1,
                          settings.events_limit)
        offset = int_param(request, "offset", 0, 0, 2**62)
        return answer(request, lambda cur: customers.customer_events(cur, key, limit, offset))

    @router.get("/v1/customers/{key}")
    def get_customer(request: Request, key: str) -> Response:
        return answer(request, lambda cur: customers.customer(cur, model_of(request, cur), key))

    return router

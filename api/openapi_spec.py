"""The OpenAPI description of the analytics routes: parameters, response schemas, security.

The routes read their query parameters themselves (one parser for JSON and CSV answers, and
`trait.X` filters have open names), so FastAPI cannot infer them; this module states them once,
per SPEC 6.2, and `operation(path)` hands each route its part as `openapi_extra`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.csvout import TABLES as CSV_TABLES
from journey.schema import CHANNELS

Schema = dict[str, Any]

BEARER = "bearer"
WRITE_KEY = "writeKey"
SECURITY_SCHEMES: Schema = {
    BEARER: {"type": "http", "scheme": "bearer",
             "description": "An API token (JOURNEY_API_TOKENS) with the route's scope."},
    WRITE_KEY: {"type": "http", "scheme": "basic",
                "description": "The write key as user name, empty password (Segment's way)."},
}


def _query(name: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}


NUMBER_OR_NULL: Schema = {"type": ["number", "null"]}
MODEL = _query("model", {"type": "string", "default": "default"}, "Stage model name.")
FROM = _query("from", {"type": "string", "format": "date-time"},
              "Only customers first seen (or sessions/events) at or after this time.")
TO = _query("to", {"type": "string", "format": "date-time"}, "... and before this time.")
CHANNEL = _query("channel", {"type": "string", "enum": list(CHANNELS)}, "Only this channel.")
TRAIT = {"name": "trait", "in": "query", "required": False, "style": "deepObject",
         "explode": True, "schema": {"type": "object", "additionalProperties": {"type": "string"}},
         "description": "Persona filter: `trait.plan=pro` keeps customers whose trait plan is pro."}
FILTERS = [MODEL, FROM, TO, CHANNEL, TRAIT]


def _side(name: str) -> list[Schema]:
    """The parameters of one selection of /v1/compare: the funnel's filters, prefixed."""
    return [
        _query(f"{name}.from", FROM["schema"], f"Selection {name}: first seen at or after this."),
        _query(f"{name}.to", TO["schema"], f"Selection {name}: first seen before this."),
        _query(f"{name}.channel", CHANNEL["schema"], f"Selection {name}: first-touch channel."),
        {**TRAIT, "name": f"{name}.trait",
         "description": f"Selection {name}: `{name}.trait.plan=pro` keeps the pro customers."},
    ]


STAGE_ROW: Schema = {"type": "object", "properties": {
    "stage": {"type": "string"}, "customers": {"type": "integer"},
    "conversion_from_previous": NUMBER_OR_NULL, "conversion_from_first": NUMBER_OR_NULL,
    "median_time_to_stage_s": NUMBER_OR_NULL}}
SCORE: Schema = {"type": "object", "properties": {
    "score": NUMBER_OR_NULL, "responses": {"type": "integer"}}}


def _rows(properties: dict[str, Schema]) -> Schema:
    return {"type": "array", "items": {"type": "object", "properties": properties}}


ROUTES: dict[str, tuple[str, list[Schema], Schema]] = {
    "/v1/funnel": ("Customers (or B2B accounts) reaching each stage, in stage order", [
        *FILTERS,
        _query("level", {"type": "string", "default": "customer", "enum": ["customer", "account"]},
               "account: the funnel over accounts (SPEC 5.1); `customers` then counts accounts, "
               "and the filters apply to the account's first_seen, first-touch channel and "
               "traits."),
    ], {"type": "object", "properties": {
        "model": {"type": "string"}, "level": {"type": "string"},
        "stages": {"type": "array", "items": STAGE_ROW}}}),
    "/v1/accounts": ("The B2B accounts by id: name, members, stage, first and last seen", [
        MODEL,
        _query("limit", {"type": "integer", "minimum": 1, "maximum": 100000, "default": 1000},
               "Accounts returned."),
        _query("offset", {"type": "integer", "minimum": 0, "default": 0}, "Accounts skipped."),
    ], _rows({
        "account_id": {"type": "string"}, "name": {"type": ["string", "null"]},
        "members": {"type": "integer"}, "stage": {"type": ["string", "null"]},
        "first_seen": {"type": "string", "format": "date-time"},
        "last_seen": {"type": "string", "format": "date-time"}})),
    "/v1/accounts/{group_id}": ("One B2B account: traits, stage, stages and members", [MODEL], {
        "type": "object", "properties": {
            "account_id": {"type": "string"}, "traits": {"type": "object"},
            "stage": {"type": ["string", "null"]},
            "first_seen": {"type": "string", "format": "date-time"},
            "stages": _rows({"stage": {"type": "string"}, "entered_at": {"type": "string"}}),
            "members": _rows({"customer_id": {"type": "string"},
                              "stage": {"type": ["string", "null"]}})}}),
    "/v1/kpis": ("Headline KPIs of the customers", FILTERS, {
        "type": "object", "properties": {
            "customers": {"type": "integer"}, "events": {"type": "integer"},
            "conversion_rate": NUMBER_OR_NULL, "retention_rate": NUMBER_OR_NULL,
            "churn_rate": NUMBER_OR_NULL, "nps": SCORE, "csat": SCORE, "ces": SCORE,
            "watermark": {"type": ["string", "null"], "format": "date-time"}}}),
    "/v1/journey-map": ("Per stage: customers, timeline, touchpoints, channels, emotion", FILTERS, {
        "type": "object", "properties": {
            "model": {"type": "string"}, "segment": {"type": ["object", "null"]},
            "kpis": {"type": "object"}, "stages": {"type": "array", "items": {"type": "object"}}}}),
    "/v1/transitions": ("Moves between stages", FILTERS, _rows({
        "from": {"type": "string"}, "to": {"type": "string"},
        "transitions": {"type": "integer"}, "customers": {"type": "integer"}})),
    "/v1/attribution": ("Conversion credit by channel or source, credit descending", [
        *FILTERS,
        _query("method", {"type": "string", "default": "last_touch", "enum": [
            "first_touch", "last_touch", "linear", "position_based"]}, "Attribution model."),
        _query("by", {"type": "string", "default": "channel", "enum": ["channel", "source"]},
               "Credit per channel or per source."),
    ], _rows({"key": {"type": "string"}, "credit": {"type": "number"},
              "conversions": {"type": "integer"}})),
    "/v1/cohorts": ("Weekly cohorts of first_seen and their activity", [
        *FILTERS, _query("weeks", {"type": "integer", "minimum": 1, "maximum": 104, "default": 12},
                         "Weeks after the first that are reported."),
    ], _rows({"cohort": {"type": "string", "format": "date-time"},
              "customers": {"type": "integer"},
              "retention": {"type": "array", "items": NUMBER_OR_NULL}})),
    "/v1/paths": ("Most frequent sequences of stages or events", [
        *FILTERS,
        _query("by", {"type": "string", "default": "stage", "enum": ["stage", "event"]},
               "Steps are stages or event names."),
        _query("steps", {"type": "integer", "minimum": 1, "maximum": 20, "default": 4},
               "Length of a path."),
        _query("top", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 10},
               "Paths returned."),
    ], _rows({"path": {"type": "array", "items": {"type": "string"}},
              "customers": {"type": "integer"}, "share": {"type": "number"}})),
    "/v1/timeseries": ("Events and customers per day and channel", FILTERS, _rows({
        "date": {"type": "string", "format": "date"}, "channel": {"type": "string"},
        "events": {"type": "integer"}, "customers": {"type": "integer"}})),
    "/v1/sessions": ("Session counts and durations", [FROM, TO, CHANNEL], {
        "type": "object", "properties": {"sessions": {"type": "integer"},
                                         "by_channel": {"type": "array"}}}),
    "/v1/customers/{key}": ("One customer by any identity key (type:value)", [MODEL], {
        "type": "object", "properties": {
            "customer_id": {"type": "string"},
            "identities": _rows({"type": {"type": "string"}, "value": {"type": "string"}}),
            "traits": {"type": "object"}, "stage": {"type": ["string", "null"]},
            "first_seen": {"type": "string", "format": "date-time"},
            "last_seen": {"type": "string", "format": "date-time"}, "lapsed": {"type": "boolean"},
            "stages": _rows({"stage": {"type": "string"}, "entered_at": {"type": "string"},
                             "inferred": {"type": "boolean"}}),
            "sessions": {"type": "array", "items": {"type": "object"}}}}),
    "/v1/customers/{key}/events": ("The customer's canonical events by time", [
        _query("limit", {"type": "integer", "minimum": 1}, "Events returned (at most the "
               "server's JOURNEY_EVENTS_LIMIT)."),
        _query("offset", {"type": "integer", "minimum": 0, "default": 0}, "Events skipped."),
    ], _rows({"event_id": {"type": "string"}, "type": {"type": "string"},
              "event": {"type": "string"}, "channel": {"type": "string"},
              "timestamp": {"type": "string", "format": "date-time"}})),
    "/v1/dropoff": ("Where customers stop, per stage", FILTERS, {
        "type": "object", "properties": {"model": {"type": "string"}, "stages": _rows({
            "stage": {"type": "string"}, "reached": {"type": "integer"},
            "stopped": {"type": "integer"}, "stop_rate": NUMBER_OR_NULL,
            "median_days_to_stop": NUMBER_OR_NULL,
            "last_touchpoints": _rows({"event": {"type": "string"}, "channel": {"type": "string"},
                                       "customers": {"type": "integer"}})})}}),
    "/v1/compare": ("Two selections' funnels side by side, and per stage b − a", [
        MODEL, *_side("a"), *_side("b")], {
        "type": "object", "properties": {
            "model": {"type": "string"},
            **{side: {"type": "object", "properties": {
                "filter": {"type": "object", "properties": {
                    "from": {"type": ["string", "null"]}, "to": {"type": ["string", "null"]},
                    "channel": {"type": ["string", "null"]}, "traits": {"type": "object"}}},
                "stages": {"type": "array", "items": STAGE_ROW}}} for side in ("a", "b")},
            "delta": _rows({"stage": {"type": "string"},
                            "delta_conversion_from_first": NUMBER_OR_NULL,
                            "delta_median_time_to_stage_s": NUMBER_OR_NULL})}}),
    "/v1/identity/conflicts": ("Identity keys refused by stitching (SPEC 2.2)", [
        _query("limit", {"type": "integer", "minimum": 1, "maximum": 100000, "default": 1000},
               "Conflicts returned."),
        _query("offset", {"type": "integer", "minimum": 0, "default": 0}, "Conflicts skipped."),
    ], _rows({
        "key": {"type": "object"}, "event_id": {"type": "string"}, "at": {"type": "string"},
        "customer_id": {"type": "string"}, "refused_customer_id": {"type": "string"}})),
}

ERRORS: dict[str, Schema] = {
    "400": {"description": "A parameter is wrong (named in the body)."},
    "401": {"description": "No or unknown API token."},
    "403": {"description": "The token lacks the route's scope."},
    "503": {"description": "No warehouse snapshot yet; retry."},
}


def operation(path: str) -> Schema:
    """The `openapi_extra` of one analytics route: summary, parameters, responses, security."""
    # A route added without an entry here still gets its security and a generic answer.
    summary, parameters, schema = ROUTES.get(path, (f"GET {path}", [], {}))
    return {
        "summary": summary,
        "parameters": parameters,
        "security": [{BEARER: []}],
        "responses": {
            "200": {"description": summary, "content": {
                "application/json": {"schema": schema},
                **({"text/csv": {"schema": {"type": "string"}}} if path in CSV_TABLES else {}),
            }},
            **ERRORS,
        },
    }


def install(app: FastAPI) -> None:
    """Add the security schemes; give the collector's writes the write-key scheme."""

    def schema() -> Schema:
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, routes=app.routes,
                               description=app.description)
            spec.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
            for path, methods in spec.get("paths", {}).items():
                for method, op in methods.items():
                    if "security" in op or not path.startswith("/v1/"):
                        continue
                    writes = method == "post" and "collector" in op.get("tags", [])
                    deadletters = path.startswith("/v1/deadletters")
                    op["security"] = [{WRITE_KEY: []} if writes and not deadletters
                                      else {BEARER: []}]
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = schema  # type: ignore[method-assign]

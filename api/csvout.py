"""SPEC 6.2 CSV answers of the analytics API: which list of each endpoint's JSON answer is "the
table" (TABLES); the rows are flattened and written by journey.csvout, the same everywhere."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from journey.csvout import CSV, Row, flatten, render, wants_csv

__all__ = ["CSV", "TABLES", "table", "wants_csv"]


def _stages(answer: Any) -> list[Row]:
    return [flatten(s) for s in answer["stages"]]


def _rows(answer: Any) -> list[Row]:
    return [flatten(r) for r in answer]


def _one(answer: Any) -> list[Row]:
    return [flatten(answer)]


def _compare(answer: Any) -> list[Row]:
    """One row per stage: a_* and b_* funnel columns, then the deltas."""
    out = []
    for a, b, d in zip(answer["a"]["stages"], answer["b"]["stages"], answer["delta"],
                       strict=True):
        row: Row = {"stage": a["stage"]}
        for side, s in (("a", a), ("b", b)):
            row |= {f"{side}_{k}": v for k, v in s.items() if k != "stage"}
        out.append(row | {k: v for k, v in d.items() if k != "stage"})
    return out


def _cohorts(answer: Any) -> list[Row]:
    """One row per cohort, the retention list spread into week_0, week_1, ... columns."""
    return [{"cohort": c["cohort"], "customers": c["customers"],
             **{f"week_{i}": r for i, r in enumerate(c["retention"])}} for c in answer]


def _sessions(answer: Any) -> list[Row]:
    """One row per channel, then the row `all` with the totals."""
    total = {k: v for k, v in answer.items() if k != "by_channel"}
    return [flatten(r) for r in answer["by_channel"]] + [flatten({"channel": "all", **total})]


def _opaque(answer: Any) -> list[Row]:
    """Rows whose nested objects (properties, traits, context, ...) differ per row: JSON cells."""
    return [flatten(r, spread=False) for r in answer]


def _query(answer: Any) -> list[Row]:
    names = [c["name"] for c in answer["columns"]]
    return [flatten(dict(zip(names, r, strict=True))) for r in answer["rows"]]


# The table of each endpoint that answers one (path template -> rows of its JSON answer).
TABLES: dict[str, Callable[[Any], list[Row]]] = {
    "/v1/funnel": _stages,
    "/v1/kpis": _one,
    "/v1/journey-map": _stages,
    "/v1/dropoff": _stages,
    "/v1/compare": _compare,
    "/v1/transitions": _rows,
    "/v1/attribution": _rows,
    "/v1/cohorts": _cohorts,
    "/v1/paths": _rows,
    "/v1/timeseries": _rows,
    "/v1/sessions": _sessions,
    "/v1/customers/{key}/events": _opaque,
    "/v1/models": _rows,
    "/v1/traits/{name}/values": lambda answer: _rows(answer["values"]),
    "/v1/identity/conflicts": _rows,
    "/v1/accounts": _rows,
    "/v1/accounts/{group_id}": lambda answer: _rows(answer["members"]),
    "/v1/query": _query,
}


# The header of a list endpoint whose answer is empty (otherwise: the keys of its rows).
EMPTY: dict[str, list[str]] = {
    "/v1/transitions": ["from", "to", "transitions", "customers"],
    "/v1/attribution": ["key", "credit", "conversions"],
    "/v1/cohorts": ["cohort", "customers"],
    "/v1/paths": ["path", "customers", "share"],
    "/v1/timeseries": ["date", "channel", "events", "customers"],
    "/v1/customers/{key}/events": ["event_id", "type", "event", "channel", "timestamp"],
    "/v1/models": ["model", "version", "conversion_stage", "stages"],
    "/v1/traits/{name}/values": ["value", "customers"],
    "/v1/identity/conflicts": ["key_type", "key_value", "event_id", "at", "customer_id",
                               "refused_customer_id"],
    "/v1/accounts": ["account_id", "name", "members", "stage", "first_seen", "last_seen"],
}


def table(path: str, answer: Any) -> bytes | None:
    """The CSV of an endpoint's JSON answer, or None when the endpoint answers no table."""
    rows = TABLES.get(path)
    if rows is None:
        return None
    if path == "/v1/query":
        return render(rows(answer), [c["name"] for c in answer["columns"]])
    found = rows(answer)
    return render(found, None if found else EMPTY.get(path, []))

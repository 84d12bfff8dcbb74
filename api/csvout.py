"""SPEC 6.2 CSV answers: `Accept: text/csv` turns an endpoint's list or table into RFC 4180 CSV
with a header row. Which list is "the table" is decided per endpoint in TABLES; the cells of a
row are flattened the same way everywhere (see `flatten`)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

CSV = "text/csv; charset=utf-8"
Row = dict[str, Any]


def wants_csv(accept: str | None) -> bool:
    """Whether an Accept header asks for text/csv (any parameters; not with q=0)."""
    for part in (accept or "").split(","):
        media, *params = (p.strip() for p in part.split(";"))
        if media.lower() == "text/csv":
            return not any(p.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000")
                           for p in params)
    return False


def flatten(row: Mapping[str, Any], prefix: str = "", spread: bool = True) -> Row:
    """One CSV row of a JSON object: nested objects become `parent_child` columns (spread) or
    JSON text, lists of scalars are joined with ` > ` (a path), lists of objects are JSON text."""
    out: Row = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and spread and value:
            out |= flatten(value, f"{name}_")
        elif isinstance(value, Mapping):
            out[name] = orjson.dumps(value).decode()
        elif isinstance(value, list | tuple):
            if any(isinstance(v, Mapping | list | tuple) for v in value):
                out[name] = orjson.dumps(value).decode()
            else:
                out[name] = " > ".join(cell(v) for v in value)
        else:
            out[name] = value
    return out


def cell(value: Any) -> str:
    """A scalar as CSV text: null is empty, booleans are true/false, numbers as in JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render(rows: Iterable[Row], columns: list[str] | None = None) -> bytes:
    """Rows (flat dicts) as CSV: a header of `columns` (default: every key in first-seen order)."""
    rows = list(rows)
    if columns is None:
        columns = list(dict.fromkeys(k for r in rows for k in r))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow([cell(r.get(c)) for c in columns])
    return buffer.getvalue().encode()


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
    "/v1/query": _query,
    "/v1/deadletters": lambda answer: _opaque(answer["dead_letters"]),
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
    "/v1/deadletters": ["id", "replayed", "received_at", "write_key", "reason", "index", "event",
                        "stage", "partition", "offset"],
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

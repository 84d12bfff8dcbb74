"""CSV answers (SPEC 6.2: `Accept: text/csv` on an endpoint that answers a list or a table):
content negotiation and one way of turning JSON rows into RFC 4180 CSV with a header row,
shared by the analytics API and the collector's dead-letter listing."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

CSV = "text/csv; charset=utf-8"
Row = dict[str, Any]


def _quality(params: list[str]) -> float:
    """The q= of a media range (1 when absent, 0 when malformed)."""
    for p in params:
        name, _, value = p.partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value)
            except ValueError:
                return 0.0
            return q if 0.0 <= q <= 1.0 else 0.0
    return 1.0


def wants_csv(accept: str | None) -> bool:
    """Whether an Accept header asks for text/csv, named explicitly, at least as much as JSON
    (application/json, application/* or */*)."""
    csv_q, json_q = 0.0, 0.0
    for part in (accept or "").split(","):
        media, *params = (p.strip() for p in part.split(";"))
        media = media.lower()
        if media == "text/csv":
            csv_q = max(csv_q, _quality(params))
        elif media in ("application/json", "application/*", "*/*"):
            json_q = max(json_q, _quality(params))
    return csv_q > 0 and csv_q >= json_q


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

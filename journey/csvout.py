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

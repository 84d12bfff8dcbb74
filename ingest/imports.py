"""Call-centre and store (POS) exports -> Segment-like messages (pure; no clock, no I/O).

A file is CSV (header row; `,` `;` or tab) or JSON Lines. `mapping` renames the file's columns to
the fields below; other columns are kept as properties. Each row is labelled by its line number
(of its first line), so a bad row is reported where the user can find it. The messageId is a
function of the row (call_id / order_id, else a hash), so re-importing a file stores nothing twice.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from ingest.errors import InvalidEventError, MalformedBodyError
from ingest.normalize import parse_time

KINDS = ("call", "store", "events")
FORMATS = ("csv", "jsonl")
FIELDS: dict[str, tuple[str, ...]] = {
    "call": ("customer_id", "email", "phone", "agent", "duration_s", "outcome", "reason",
             "started_at", "call_id"),
    "store": ("customer_id", "loyalty_card", "email", "phone", "store_id", "order_id", "amount",
              "currency", "items", "visited_at", "purchased_at"),
    "events": (),
}
Row = dict[str, Any]
# (line, the row as read, its message or why it cannot be one)
Item = tuple[int, Any, "dict[str, Any] | InvalidEventError"]


def parse_mapping(text: str | None) -> dict[str, str]:
    """`column=field,column=field` -> {column: field}; a malformed pair rejects the request."""
    mapping: dict[str, str] = {}
    for pair in (text or "").split(","):
        if not pair.strip():
            continue
        column, sep, field = pair.partition("=")
        if not sep or not column.strip() or not field.strip():
            raise MalformedBodyError(f"mapping {pair.strip()!r} is not column=field")
        mapping[column.strip()] = field.strip()
    return mapping


def _rows_csv(text: str) -> Iterator[tuple[int, Row | InvalidEventError]]:
    first = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [name.strip() for name in next(reader, [])]
    while True:
        line = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield line, InvalidEventError(f"unreadable CSV row: {exc}", line=line)
            continue
        if not any(value.strip() for value in values):
            continue
        if len(values) != len(header):
            yield line, InvalidEventError(
                f"row has {len(values)} fields; the header has {len(header)}", line=line)
            continue
        yield line, dict(zip(header, values, strict=True))


def _rows_jsonl(text: str) -> Iterator[tuple[int, Row | InvalidEventError]]:
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            row = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            yield line, InvalidEventError(f"line is not valid JSON: {exc}", line=line)
            continue
        if isinstance(row, dict):
            yield line, row
        else:
            yield line, InvalidEventError("line is not a JSON object", line=line)


def read_rows(data: bytes, fmt: str) -> Iterator[tuple[int, Row | InvalidEventError]]:
    """(line, row or why it is unreadable) of each non-blank row of a CSV or JSONL file."""
    try:
        text = data.decode("utf-8-sig")  # Excel writes a BOM
    except UnicodeDecodeError as exc:
        raise MalformedBodyError(f"file is not UTF-8: {exc}") from exc
    if fmt == "csv":
        return _rows_csv(text)
    if fmt == "jsonl":
        return _rows_jsonl(text)
    raise MalformedBodyError(f"format must be one of {', '.join(FORMATS)}")


def _value(row: Row, name: str) -> Any:
    value = row.pop(name, None)
    if isinstance(value, str):
        value = value.strip()
    return None if value in ("", None) else value


def _number(row: Row, name: str) -> float | None:
    value = _value(row, name)
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidEventError(f"{name} is not a number: {str(value)[:40]!r}",
                                field=name) from exc


def _time(row: Row, *names: str) -> str:
    for name in names:
        value = _value(row, name)
        if value is None:
            continue
        if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
            try:
                when = datetime.fromtimestamp(float(value), UTC)  # unix seconds
            except (OverflowError, OSError, ValueError) as exc:
                raise InvalidEventError(f"{name} is out of range", field=name) from exc
        else:
            when = parse_time(value, name) or datetime.min.replace(tzinfo=UTC)
        return when.isoformat().replace("+00:00", "Z")
    raise InvalidEventError(f"{' or '.join(names)} is missing", field=names[0])


def _digest(kind: str, row: Mapping[str, Any]) -> str:
    body = orjson.dumps(row, option=orjson.OPT_SORT_KEYS, default=str)
    return f"{kind}-h{hashlib.sha256(body).hexdigest()[:40]}"


def _stable_id(kind: str, given: Any, row: Mapping[str, Any]) -> str:
    text = str(given).strip() if given is not None else ""
    return f"{kind}-{text}" if text and len(text) <= 80 else _digest(kind, row)


def _identity(row: Row, message: dict[str, Any]) -> None:
    traits = {name: value for name in ("email", "phone") if (value := _value(row, name))}
    context: dict[str, Any] = {"traits": traits} if traits else {}
    if (card := _value(row, "loyalty_card")) is not None:
        context["externalIds"] = [{"id": str(card), "type": "loyalty_card"}]
    if (customer := _value(row, "customer_id")) is not None:
        message["userId"] = str(customer)
    message["context"] = context


def _items(value: Any, properties: dict[str, Any]) -> None:
    if isinstance(value, str) and value.startswith("["):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise InvalidEventError("items is not a JSON list", field="items") from exc
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        properties["quantity"] = int(value)
    elif isinstance(value, str):
        properties["products"] = [{"product_id": p.strip()} for p in value.split(";") if p.strip()]
    elif isinstance(value, list):
        properties["products"] = value


def _call(row: Row) -> dict[str, Any]:
    original = dict(row)
    message: dict[str, Any] = {"type": "track", "event": "Call Completed"}
    _identity(row, message)
    message["timestamp"] = _time(row, "started_at")
    call_id = _value(row, "call_id")
    message["messageId"] = _stable_id("call", call_id, original)
    properties = {name: value for name in ("agent", "outcome", "reason")
                  if (value := _value(row, name)) is not None}
    if (duration := _number(row, "duration_s")) is not None:
        properties["duration_s"] = duration
    if call_id is not None:
        properties["call_id"] = str(call_id)
    message["properties"] = {**row, **properties, "channel": "call"}
    return message


def _store(row: Row) -> dict[str, Any]:
    original = dict(row)
    order_id = _value(row, "order_id")
    amount = _number(row, "amount")
    purchase = order_id is not None or amount is not None or row.get("purchased_at") not in (
        None, "")
    message: dict[str, Any] = {"type": "track",
                               "event": "Order Completed" if purchase else "Store Visited"}
    _identity(row, message)
    message["timestamp"] = _time(row, *(("purchased_at", "visited_at") if purchase
                                        else ("visited_at",)))
    message["messageId"] = _stable_id("order" if purchase else "store", order_id, original)
    properties: dict[str, Any] = {}
    if (store_id := _value(row, "store_id")) is not None:
        properties["store_id"] = str(store_id)
    if order_id is not None:
        properties["order_id"] = str(order_id)
    if amount is not None:
        properties["total"] = amount
    if (currency := _value(row, "currency")) is not None:
        properties["currency"] = str(currency).upper()
    if (items := _value(row, "items")) is not None:
        _items(items, properties)
    message["properties"] = {**row, **properties, "channel": "store"}
    return message


def _segment(row: Row) -> dict[str, Any]:
    message = dict(row)
    if "type" not in message and "event" in message:
        message["type"] = "track"
    if not message.get("messageId"):
        message["messageId"] = _digest("import", row)
    return message


def row_message(kind: str, row: Row, mapping: Mapping[str, str]) -> dict[str, Any]:
    """The message of one row after renaming its columns by `mapping`; InvalidEventError if bad."""
    renamed = {mapping.get(name, name): value for name, value in row.items()}
    builders = {"call": _call, "store": _store, "events": _segment}
    return builders[kind](renamed)


def import_items(data: bytes, kind: str, fmt: str, mapping: Mapping[str, str]) -> list[Item]:
    """Every row of a file as (line, row, message or the reason it was rejected)."""
    if kind not in KINDS:
        raise MalformedBodyError(f"kind must be one of {', '.join(KINDS)}")
    if kind == "events" and fmt != "jsonl":
        raise MalformedBodyError("events imports are JSON Lines: one Segment message per line")
    items: list[Item] = []
    for line, row in read_rows(data, fmt):
        if isinstance(row, InvalidEventError):
            items.append((line, None, row))
            continue
        try:
            items.append((line, row, row_message(kind, row, mapping)))
        except InvalidEventError as exc:
            items.append((line, row, exc))
    return items

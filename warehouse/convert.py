"""Rows <-> Arrow: canonical events and derived facts to Arrow tables, and stored events back."""

from __future__ import annotations

import json
import typing
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any

import msgspec
import orjson
import pyarrow as pa

from journey.hashing import event_hash, key_hash
from journey.schema import Event, IdentityKey
from warehouse.tables import EVENTS_SCHEMA, ROW_CLASSES, ROW_SCHEMAS, field_names

StoredEvent = tuple[Event, int, int]  # (event, partition, offset)
_JSON = msgspec.json.Encoder()  # what the event carried, kept as sent (any int size)
_KEYS = msgspec.json.Decoder(tuple[IdentityKey, ...])


def dump_json(value: Any) -> str:
    """JSON text of a value kept as sent; orjson, falling back to json for what it refuses."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        # orjson refuses integers beyond 64 bits, which JSON itself allows.
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def load_json(text: str) -> Any:
    """Parse JSON text written by dump_json."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def events_to_arrow(items: Sequence[StoredEvent]) -> pa.Table:
    """The `events` rows of stored events, one per event, in the given order (with hashes)."""
    # Column by column: this runs over every event the processor stores.
    events = [item[0] for item in items]
    primaries = [e.keys[0] for e in events]
    cols: dict[str, list[Any]] = {
        "event_id": [e.event_id for e in events],
        "type": [e.type for e in events],
        "event": [e.event for e in events],
        "channel": [e.channel for e in events],
        "timestamp": [e.timestamp for e in events],
        "received_at": [e.received_at for e in events],
        "timestamp_flagged": [e.timestamp_flagged for e in events],
        "key_type": [k.type for k in primaries],
        "key_value": [k.value for k in primaries],
        "keys": [_JSON.encode(e.keys).decode() for e in events],
        "previous_id": [e.previous_id for e in events],
        "properties": [_JSON.encode(e.properties).decode() for e in events],
        "traits": [_JSON.encode(e.traits).decode() for e in events],
        "context": [_JSON.encode(e.context).decode() for e in events],
        "campaign_source": [e.campaign_source for e in events],
        "campaign_medium": [e.campaign_medium for e in events],
        "campaign_name": [e.campaign_name for e in events],
        "source": [e.source for e in events],
        "medium": [e.medium for e in events],
        "page_url": [e.page_url for e in events],
        "partition": [item[1] for item in items],
        "offset": [item[2] for item in items],
        "event_hash": [event_hash(e.event_id) for e in events],
        "key_hash": [key_hash(k.type, k.value) for k in primaries],
    }
    return pa.Table.from_pydict({name: cols[name] for name in EVENTS_SCHEMA.names},
                                schema=EVENTS_SCHEMA)


Linked = tuple[tuple[IdentityKey, ...], str | None]  # an event's keys, an alias's previousId
LINKS_SQL = "SELECT keys, CASE WHEN type = 'alias' THEN previous_id END AS alias FROM {events}"
_PAYLOAD = ("properties", "traits", "context")
_TIMES = ("timestamp", "received_at")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc_datetimes(column: pa.Array | pa.ChunkedArray) -> list[Any]:
    """A timestamp column as UTC datetimes. Arrow's own conversion looks the time zone up for
    every value (3.7 us each, most of decoding a stored event); from microseconds it is 0.8 us."""
    if column.null_count:
        return list(column.to_pylist())
    micros = column.cast(pa.timestamp("us", tz=column.type.tz)).cast(pa.int64()).to_pylist()
    return [_EPOCH + timedelta(microseconds=m) for m in micros]


def links_from_arrow(batch: pa.RecordBatch) -> list[Linked]:
    """What linking identities needs of stored events (rows of LINKS_SQL): no event decoded."""
    return list(zip(map(_KEYS.decode, batch.column(0).to_pylist()), batch.column(1).to_pylist(),
                    strict=True))


def events_from_arrow(batch: pa.RecordBatch | pa.Table) -> list[StoredEvent]:
    """Canonical events back from `events` rows (columns by name; extra columns are ignored)."""
    names = [n for n in EVENTS_SCHEMA.names
             if n not in ("event_hash", "key_hash", *_TIMES, *_PAYLOAD)]
    col: dict[str, list[Any]] = {name: batch.column(name).to_pylist() for name in names}
    for name in _TIMES:
        col[name] = utc_datetimes(batch.column(name))
    for name in _PAYLOAD:
        col[name] = list(map(load_json, batch.column(name).to_pylist()))
    out: list[StoredEvent] = []
    for i in range(batch.num_rows):
        # Stored events were validated when they were first accepted: no second validation.
        event = Event(
            event_id=col["event_id"][i],
            type=col["type"][i],
            event=col["event"][i],
            channel=col["channel"][i],
            timestamp=col["timestamp"][i],
            received_at=col["received_at"][i],
            timestamp_flagged=col["timestamp_flagged"][i],
            keys=_KEYS.decode(col["keys"][i]),
            previous_id=col["previous_id"][i],
            properties=col["properties"][i],
            traits=col["traits"][i],
            context=col["context"][i],
            campaign_source=col["campaign_source"][i],
            campaign_medium=col["campaign_medium"][i],
            campaign_name=col["campaign_name"][i],
            source=col["source"][i],
            medium=col["medium"][i],
            page_url=col["page_url"][i],
        )
        out.append((event, col["partition"][i], col["offset"][i]))
    return out


def rows_to_arrow(table: str, rows: Sequence[Any]) -> pa.Table:
    """An Arrow table from dataclass rows of a derived, models or customer_state table (dicts
    become JSON text)."""
    schema = ROW_SCHEMAS[table]
    json_fields = _JSON_FIELDS[table]
    # Column by column: one attribute fetch per value, no per-value type tests (this runs over
    # every changed row of each commit). Arrow takes tuples for list columns.
    cols: dict[str, list[Any]] = {}
    for name in schema.names:
        values = list(map(attrgetter(name), rows))
        cols[name] = [_json_or_none(v) for v in values] if name in json_fields else values
    return pa.Table.from_pydict(cols, schema=schema)


def _json_or_none(value: Any) -> str | None:
    return None if value is None else dump_json(value)


def _dict_fields(row_class: type[Any]) -> frozenset[str]:
    """The fields of a row class that hold dicts (stored as JSON text)."""
    hints = typing.get_type_hints(row_class)
    def holds_dict(hint: Any) -> bool:
        return dict in (typing.get_origin(h) or h for h in (hint, *typing.get_args(hint)))

    return frozenset(name for name in field_names(row_class) if holds_dict(hints[name]))


_JSON_FIELDS: dict[str, frozenset[str]] = {
    name: _dict_fields(row) for name, row in ROW_CLASSES.items()
}

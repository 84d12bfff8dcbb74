"""The warehouse tables: their Arrow schemas and DuckDB column types.

The derived tables take their columns from the row classes of journey/facts.py, field for field,
so the contract between the journey core and the warehouse has a single source.
"""

from __future__ import annotations

import types
import typing
from datetime import datetime
from typing import Any

import msgspec
import pyarrow as pa

from journey.facts import (
    AccountEventRow,
    ConflictRow,
    CustomerRow,
    EventStageRow,
    IdentityRow,
    SessionRow,
    StageEntryRow,
    StateRow,
    SurveyRow,
    TransitionRow,
)


class ModelRow(msgspec.Struct, frozen=True, gc=False):
    """Table `models`: one row per stage of each active stage model."""

    model: str
    stage: str
    stage_index: int
    conversion_stage: bool
    lapse_after_s: float


TIMESTAMP = pa.timestamp("us", tz="UTC")

EVENTS_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("type", pa.string()),
        ("event", pa.string()),
        ("channel", pa.string()),
        ("timestamp", TIMESTAMP),
        ("received_at", TIMESTAMP),
        ("timestamp_flagged", pa.bool_()),
        ("key_type", pa.string()),
        ("key_value", pa.string()),
        ("keys", pa.string()),
        ("previous_id", pa.string()),
        ("properties", pa.string()),
        ("traits", pa.string()),
        ("context", pa.string()),
        ("campaign_source", pa.string()),
        ("campaign_medium", pa.string()),
        ("campaign_name", pa.string()),
        ("source", pa.string()),
        ("medium", pa.string()),
        ("page_url", pa.string()),
        ("partition", pa.int32()),
        ("offset", pa.int64()),
        # journey.hashing of event_id and of the primary key: the processor's dedup set and a
        # customer's history read back by one BIGINT column (the files are sorted by key_hash).
        ("event_hash", pa.int64()),
        ("key_hash", pa.int64()),
    ]
)

# The derived tables, in the order of CustomerFacts' fields.
DERIVED_ROWS: dict[str, type[Any]] = {
    "identities": IdentityRow,
    "customers": CustomerRow,
    "sessions": SessionRow,
    "stage_entries": StageEntryRow,
    "event_stages": EventStageRow,
    "transitions": TransitionRow,
    "surveys": SurveyRow,
    "account_events": AccountEventRow,
    "identity_conflicts": ConflictRow,
}


def _arrow_type(hint: Any) -> pa.DataType:
    """The Arrow type of a row-class field: dicts are JSON text, tuples of str are lists."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return _arrow_type(args[0])
    origin = typing.get_origin(hint) or hint
    simple: dict[Any, pa.DataType] = {
        str: pa.string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_(),
        datetime: TIMESTAMP, dict: pa.string(), bytes: pa.binary(),
    }
    if origin in simple:
        return simple[origin]
    if origin in (tuple, list):
        return pa.list_(_arrow_type(args[0]))
    raise TypeError(f"no Arrow type for {hint!r}")


def field_names(row_class: type[Any]) -> tuple[str, ...]:
    """The fields of a row class, in order."""
    names: tuple[str, ...] = row_class.__struct_fields__
    return names


def schema_of(row_class: type[Any]) -> pa.Schema:
    """The Arrow schema of a dataclass row: one nullable column per field, in field order."""
    hints = typing.get_type_hints(row_class)
    return pa.schema([(name, _arrow_type(hints[name])) for name in field_names(row_class)])


SCHEMAS: dict[str, pa.Schema] = {
    "events": EVENTS_SCHEMA,
    **{name: schema_of(row) for name, row in DERIVED_ROWS.items()},
    "models": schema_of(ModelRow),
}
TABLES: tuple[str, ...] = tuple(SCHEMAS)
# Tables a commit writes from row objects (Changes.rows, models); events come from StoredEvent.
ROW_CLASSES: dict[str, type[Any]] = {**DERIVED_ROWS, "models": ModelRow, "customer_state": StateRow}
ROW_SCHEMAS: dict[str, pa.Schema] = {name: schema_of(row) for name, row in ROW_CLASSES.items()}

_DUCKDB_TYPES: dict[pa.DataType, str] = {
    pa.string(): "VARCHAR", pa.int32(): "INTEGER", pa.int64(): "BIGINT",
    pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN", TIMESTAMP: "TIMESTAMP WITH TIME ZONE",
    pa.list_(pa.string()): "VARCHAR[]", pa.binary(): "BLOB",
}


def duckdb_type(arrow_type: pa.DataType) -> str:
    """The DuckDB type that read_parquet gives a column of this Arrow type."""
    return _DUCKDB_TYPES[arrow_type]

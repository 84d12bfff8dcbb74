"""What every metric shares: the stage model of a query and the customer filter (segment,
first-touch channel, first_seen window) as one SQL relation `fc(customer_id, first_seen)`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import duckdb

from api.errors import BadParameterError, UnknownModelError, UnknownTraitError
from api.metrics import prepared
from journey.schema import CHANNELS

TRAIT_PREFIX = "trait."


@dataclass(frozen=True, slots=True)
class StageModel:
    """An active stage model: its stages in order and where conversion is."""

    name: str
    stages: tuple[str, ...]
    conversion_stage: str
    lapse_after_s: float


@dataclass(frozen=True, slots=True)
class CustomerFilter:
    """Customers selected by first_seen in [since, until), first-touch channel and traits."""

    since: datetime | None = None
    until: datetime | None = None
    channel: str | None = None
    traits: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @property
    def segment(self) -> dict[str, str]:
        """The persona the filter selects, as trait name -> value."""
        return dict(self.traits)


def parse_time(param: str, value: str | None) -> datetime | None:
    """An ISO-8601 date or date-time (naive = UTC) as an aware UTC datetime; BadParameterError."""
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        try:
            parsed = datetime.combine(date.fromisoformat(value), datetime.min.time())
        except ValueError:
            raise BadParameterError(
                f"{param}={value!r} is not an ISO-8601 date or date-time (e.g. 2024-05-01 or "
                "2024-05-01T12:00:00Z)",
                param=param,
                value=value,
            ) from None
    try:
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-14:00 is past year 9999 in UTC
        raise BadParameterError(f"{param}={value!r} is out of range once converted to UTC",
                                param=param, value=value) from None


def parse_channel(value: str | None) -> str | None:
    """A channel name of SPEC 1.2, lower-cased; BadParameterError naming the valid ones."""
    if value is None or value == "":
        return None
    channel = value.lower()
    if channel not in CHANNELS:
        raise BadParameterError(
            f"channel={value!r} is not one of {', '.join(CHANNELS)}",
            param="channel",
            value=value,
            known=list(CHANNELS),
        )
    return channel


def parse_filter(params: Mapping[str, str]) -> CustomerFilter:
    """from=, to=, channel= and every trait.X= of a query string as a CustomerFilter."""
    since, until = parse_time("from", params.get("from")), parse_time("to", params.get("to"))
    traits = tuple(
        sorted((k[len(TRAIT_PREFIX):], v) for k, v in params.items() if k.startswith(TRAIT_PREFIX))
    )
    for name, _ in traits:
        if not name or '"' in name or "\\" in name:
            raise BadParameterError(f"bad trait name {name!r}", param=TRAIT_PREFIX + name)
    return CustomerFilter(since, until, parse_channel(params.get("channel")), traits)


def customer_sql(f: CustomerFilter) -> tuple[str, dict[str, Any]]:
    """`SELECT customer_id, first_seen FROM customers WHERE <f>` and its named parameters."""
    where, params = customer_where(f)
    return f"SELECT customer_id, first_seen FROM customers WHERE {where}", params


def customer_where(f: CustomerFilter) -> tuple[str, dict[str, Any]]:
    """The predicate over the `customers` columns that selects f's customers, and parameters."""
    # Traits are parsed once per snapshot (api.metrics.prepared): match the JSON text of the
    # classes that have them instead of extracting JSON per customer and query.
    return _where(f, "traits IN (SELECT traits FROM __j_class WHERE k IN ({classes}))")


def window_channel_where(f: CustomerFilter) -> tuple[list[str], dict[str, Any]]:
    """The conditions of f on first_seen and first_channel (columns of customers, of the
    per-customer summary and of accounts), and their parameters."""
    where, params = ["TRUE"], dict[str, Any]()
    if f.since is not None:
        where.append("first_seen >= CAST($f_since AS TIMESTAMPTZ)")
        params["f_since"] = f.since.isoformat()
    if f.until is not None:
        where.append("first_seen < CAST($f_until AS TIMESTAMPTZ)")
        params["f_until"] = f.until.isoformat()
    if f.channel is not None:
        where.append("first_channel = $f_channel")
        params["f_channel"] = f.channel
    return where, params


def _where(f: CustomerFilter, traits_in: str) -> tuple[str, dict[str, Any]]:
    """f as a predicate over first_seen and first_channel, with traits_in (a template over the
    matching classes' SELECT) for the trait filter."""
    where, params = window_channel_where(f)
    if f.traits:
        classes, tparams = _trait_classes(f)
        where.append(traits_in.format(classes=classes))
        params |= tparams
    return " AND ".join(where), params


def _trait_classes(f: CustomerFilter) -> tuple[str, dict[str, Any]]:
    """SELECT of the customer classes having every trait value of f (json_extract_string text,
    so trait.vip=true matches a JSON true), and its parameters."""
    parts, params = [], dict[str, Any]()
    for i, (name, value) in enumerate(f.traits):
        parts.append(f"SELECT k FROM __j_ktraits WHERE name = $f_tn{i} AND value = $f_tv{i}")
        params[f"f_tn{i}"], params[f"f_tv{i}"] = name, value
    return " INTERSECT ".join(parts), params


def has_window(f: CustomerFilter) -> bool:
    """Whether f bounds first_seen (then class-level pre-aggregates cannot answer it)."""
    return f.since is not None or f.until is not None


def class_where(f: CustomerFilter, column: str = "k") -> tuple[str, dict[str, Any]]:
    """A predicate over a class column selecting f's customers (f without a first_seen window).

    Unfiltered it is TRUE, which keeps class NULL (events of customers without a customer row)."""
    if f == CustomerFilter():
        return "TRUE", {}
    if has_window(f):
        raise ValueError("a first_seen window cannot be answered per class")
    where, params = ["TRUE"], dict[str, Any]()
    if f.channel is not None:
        where.append("first_channel = $f_channel")
        params["f_channel"] = f.channel
    if f.traits:
        classes, tparams = _trait_classes(f)
        where.append(f"k IN ({classes})")
        params |= tparams
    return f"{column} IN (SELECT k FROM __j_class WHERE {' AND '.join(where)})", params


def reach_where(f: CustomerFilter) -> tuple[str, dict[str, Any]]:
    """The predicate over `__j_reach` (first_seen, first_channel, k) selecting f's customers."""
    return _where(f, "k IN ({classes})")


def restrict(f: CustomerFilter, column: str) -> tuple[str, dict[str, Any]]:
    """A predicate keeping rows whose `column` is a selected customer, and its parameters.

    Unfiltered it is TRUE: every row of a derived table belongs to a customer, and skipping the
    semi-join saves a hash probe per row on the event-sized tables."""
    if f == CustomerFilter():
        return "TRUE", {}
    customers, params = customer_sql(f)
    return f"{column} IN (SELECT customer_id FROM ({customers}))", params


def check_traits(con: duckdb.DuckDBPyConnection, f: CustomerFilter) -> None:
    """UnknownTraitError when a trait filter names a trait that no customer has."""
    if f.traits:
        prepared.ensure(con)
    for name, _ in f.traits:
        row = con.execute(
            "SELECT 1 FROM __j_ktraits WHERE name = $n LIMIT 1", {"n": name}).fetchone()
        if row is None:
            known = [r[0] for r in con.execute(
                "SELECT DISTINCT unnest(json_keys(traits)) AS k FROM customers ORDER BY k LIMIT 100"
            ).fetchall()]
            raise UnknownTraitError(
                f"no customer has the trait {name!r}; known traits: {', '.join(known) or 'none'}",
                trait=name,
                known=known,
            )


def load_model(con: duckdb.DuckDBPyConnection, name: str) -> StageModel:
    """The active model named `name`; UnknownModelError listing the active ones."""
    rows = con.execute(
        "SELECT stage, conversion_stage, lapse_after_s FROM models WHERE model = $m "
        "ORDER BY stage_index",
        {"m": name},
    ).fetchall()
    if not rows:
        known = [r[0] for r in con.execute("SELECT DISTINCT model FROM models ORDER BY 1")
                 .fetchall()]
        raise UnknownModelError(
            f"unknown model {name!r}; active models: {', '.join(known) or 'none'}",
            model=name,
            known=known,
        )
    conversion = next((r[0] for r in rows if r[1]), rows[-1][0])
    return StageModel(name, tuple(r[0] for r in rows), conversion, float(rows[0][2]))


def has_relation(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether the snapshot has a table or view `name` (a hand-made test warehouse, or one
    written before the table existed, may not)."""
    return prepared.relation_exists(con, name)


def iso(value: datetime | None) -> str | None:
    """A naive-UTC or aware datetime as ISO-8601 UTC with `Z` (SPEC: times on the wire)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat() + "Z"


def rows_as_dicts(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """The result of the last query on cur as a list of {column: value}."""
    names = [d[0] for d in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

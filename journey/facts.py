"""What the journey core derives for a customer: the rows of the warehouse's derived tables.

These plain records are the contract between the pure core (stitching, sessions, stages) and the
warehouse writer. Every field maps one-to-one to a column of the table named in the docstring.
They are frozen msgspec structs outside the cycle collector: the processor makes several per
event, and a struct is built about twenty times faster than a frozen dataclass.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec


class IdentityRow(msgspec.Struct, frozen=True, gc=False):
    """Table `identities`: one row per identity key of a customer."""

    customer_id: str
    type: str
    value: str
    first_seen: datetime


class CustomerRow(msgspec.Struct, frozen=True, gc=False):
    """Table `customers`: one row per customer."""

    customer_id: str
    user_id: str | None
    first_seen: datetime
    last_seen: datetime
    event_count: int
    first_channel: str
    first_source: str
    first_medium: str
    traits: dict[str, Any]


class SessionRow(msgspec.Struct, frozen=True, gc=False):
    """Table `sessions` (SPEC 3). `converted_models`: models whose conversion stage an event of
    this session entered."""

    session_id: str
    customer_id: str
    channel: str
    start: datetime
    end: datetime
    duration_s: float
    event_count: int
    page_views: int
    landing_page: str | None
    source: str
    medium: str
    campaign: str | None
    converted_models: tuple[str, ...]


class StageEntryRow(msgspec.Struct, frozen=True, gc=False):
    """Table `stage_entries` (SPEC 4.2): the stages a customer reached, per model."""

    customer_id: str
    model: str
    stage: str
    stage_index: int
    entered_at: datetime
    inferred: bool
    event_id: str


class EventStageRow(msgspec.Struct, frozen=True, gc=False):
    """Table `event_stages`: per event and model, the customer, the session, the event's own stage
    (or None) and the stage at the event (SPEC 4.2)."""

    event_id: str
    customer_id: str
    session_id: str
    model: str
    timestamp: datetime
    event: str
    channel: str
    own_stage: str | None
    stage_at: str
    stage_at_index: int


class TransitionRow(msgspec.Struct, frozen=True, gc=False):
    """Table `transitions`: per customer and model, the count of each own-stage change."""

    customer_id: str
    model: str
    from_stage: str
    to_stage: str
    transitions: int


class SurveyRow(msgspec.Struct, frozen=True, gc=False):
    """Table `surveys`: one row per `Survey Responded` event with a known survey and a score, per
    model (stage at the response event, for emotion per stage)."""

    event_id: str
    customer_id: str
    model: str
    timestamp: datetime
    survey: str
    score: float
    stage_at: str


class AccountEventRow(msgspec.Struct, frozen=True, gc=False):
    """Table `account_events` (SPEC 5.1): one row per `group` event, which makes its customer a
    member of the account `account_id` (the call's groupId); `traits` are the call's traits,
    which describe the account. Accounts are views over these rows (warehouse/accounts.py)."""

    event_id: str
    customer_id: str
    account_id: str
    timestamp: datetime
    traits: dict[str, Any]


class ConflictRow(msgspec.Struct, frozen=True, gc=False):
    """Table `identity_conflicts` (SPEC 5.1): a link of SPEC 2.2 that was refused, one row per
    event and refused key: the key (whose customer holds another user_id), the event that
    carried it (of customer `customer_id`) and the customer that holds the key."""

    customer_id: str
    key_type: str
    key_value: str
    event_id: str
    at: datetime
    refused_customer_id: str


@dataclass(slots=True)
class CustomerFacts:
    """Everything derived for one customer, over all models."""

    customer: CustomerRow
    identities: list[IdentityRow] = field(default_factory=list)
    sessions: list[SessionRow] = field(default_factory=list)
    stage_entries: list[StageEntryRow] = field(default_factory=list)
    event_stages: list[EventStageRow] = field(default_factory=list)
    transitions: list[TransitionRow] = field(default_factory=list)
    surveys: list[SurveyRow] = field(default_factory=list)
    account_events: list[AccountEventRow] = field(default_factory=list)
    identity_conflicts: list[ConflictRow] = field(default_factory=list)


# The derived tables a customer's facts fill, in CustomerFacts' field order.
FACT_TABLES: tuple[str, ...] = ("customers", "identities", "sessions", "stage_entries",
                                "event_stages", "transitions", "surveys", "account_events",
                                "identity_conflicts")


class StateRow(msgspec.Struct, frozen=True, gc=False):
    """Table `customer_state` (internal): the processor's running state of one customer, encoded
    by the processor, with `component` the hash of a key of its identity component (customers
    joined by a refused link share it). Committed with the rows it produced."""

    customer_id: str
    component: int
    state: bytes


@dataclass(slots=True)
class Changes:
    """What one warehouse commit changes besides raw events: rows deleted, then rows inserted.

    `deletes` lists (table, column, values): every row of `table` whose `column` is in `values`
    goes, one statement per table and column (a DELETE costs about the same for one key or
    many). `rows` maps a derived table (or `customer_state`) to the rows to insert. Deletes run
    before inserts, so replacing a customer is a delete by customer_id plus its new rows.
    """

    rows: dict[str, list[Any]] = field(default_factory=dict)
    _deletes: dict[tuple[str, str], set[str]] = field(default_factory=dict)

    @property
    def deletes(self) -> list[tuple[str, str, frozenset[str]]]:
        """The queued deletions, one per table and column."""
        return [(t, c, frozenset(v)) for (t, c), v in self._deletes.items() if v]

    def add(self, table: str, rows: list[Any]) -> None:
        """Queue rows for insertion into a table."""
        if rows:
            self.rows.setdefault(table, []).extend(rows)

    def delete(self, table: str, column: str, values: Iterable[str]) -> None:
        """Queue the deletion of a table's rows whose column is in values."""
        self._deletes.setdefault((table, column), set()).update(values)

    def drop_deletes(self) -> None:
        """Forget the queued deletions (a rebuild writes into emptied tables)."""
        self._deletes.clear()

    def add_facts(self, facts: CustomerFacts) -> None:
        """Queue every row of one customer's facts."""
        self.add("customers", [facts.customer])
        for name in FACT_TABLES[1:]:
            self.add(name, getattr(facts, name))

    def __bool__(self) -> bool:
        return bool(self.rows or any(self._deletes.values()))

"""What extending a customer's running state changed: the net rows of one or more extends.

Building a row (a frozen dataclass) costs more than the state update that produces it, and in a
batch most of them would be replaced by the next event of the same customer. So a `Delta` keeps
the customer's counters, the touched sessions and the transition counts as small snapshots, and
`facts()` builds the rows once, after the batch's deltas of a customer were merged.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import msgspec

from journey.facts import (
    AccountEventRow,
    CustomerFacts,
    CustomerRow,
    EventStageRow,
    IdentityRow,
    StageEntryRow,
    SurveyRow,
    TransitionRow,
)
from processor.derive import CoreConfig
from processor.sessions import EPOCH, OpenSession, from_micros, to_row
from processor.stages.evaluate import transition_counts

if TYPE_CHECKING:
    from processor.incremental import Running

_TRAITS = msgspec.json.Decoder(dict[str, object])


class Delta(msgspec.Struct, gc=False):  # a Struct: made per event, it is 3x cheaper to create
    """The change of one customer: its row and transitions (replacing the old ones), session
    upserts by session_id (`sessions` maps each touched session_id to its latest state), and new
    identity, stage entry, event stage, survey and account rows (an extend refuses no link, so it
    records no identity conflict)."""

    run: Running
    config: CoreConfig
    event_count: int = 0
    last_seen: datetime = EPOCH  # set by extend; immutable, so a shared default is safe
    traits: bytes = b""
    sessions: dict[str, OpenSession] = msgspec.field(default_factory=dict)
    transitions: tuple[tuple[int, ...], ...] = ()  # per model: Progress.transitions
    identities: list[IdentityRow] = msgspec.field(default_factory=list)
    stage_entries: list[StageEntryRow] = msgspec.field(default_factory=list)
    event_stages: list[EventStageRow] = msgspec.field(default_factory=list)
    surveys: list[SurveyRow] = msgspec.field(default_factory=list)
    account_events: list[AccountEventRow] = msgspec.field(default_factory=list)

    def merge(self, later: Delta) -> None:
        """Fold a later delta of the same customer into this one: the net change of both."""
        self.event_count, self.last_seen = later.event_count, later.last_seen
        self.traits = later.traits
        self.sessions.update(later.sessions)  # an updated session keeps its place
        self.transitions = later.transitions
        self.identities.extend(later.identities)
        self.stage_entries.extend(later.stage_entries)
        self.event_stages.extend(later.event_stages)
        self.surveys.extend(later.surveys)
        self.account_events.extend(later.account_events)

    def customer(self) -> CustomerRow:
        """The customer's row after the change."""
        run = self.run
        return CustomerRow(
            run.customer_id,
            run.user_id,
            from_micros(run.first_seen),  # the first event's, fixed since
            self.last_seen,
            self.event_count,
            run.first_channel,
            run.first_source,
            run.first_medium,
            _TRAITS.decode(self.traits) if self.traits else {},
        )

    def facts(self) -> CustomerFacts:
        """Every row of the change (all of the customer's rows, when it began at `start`)."""
        cid, compiled = self.run.customer_id, self.config.compiled
        names = tuple(m.model.name for m in compiled)
        sessions = [
            to_row(s, cid, tuple(n for i, n in enumerate(names) if (s.converted >> i) & 1))
            for s in self.sessions.values()
        ]
        transitions = [
            TransitionRow(cid, model.model.name, model.names[a], model.names[b], count)
            for model, flat in zip(compiled, self.transitions, strict=True)
            for a, b, count in transition_counts(flat)
        ]
        return CustomerFacts(
            self.customer(),
            list(self.identities),
            sessions,
            list(self.stage_entries),
            list(self.event_stages),
            transitions,
            list(self.surveys),
            list(self.account_events),
        )

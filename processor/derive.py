"""The per-customer derivation: a pure batch function from events to the derived facts.

`derive` must be given a set of events closed under linking (every event sharing a key with one
of them, or an alias previousId value, is in it too); the components of processor/graph.py are
such sets. Then deriving each set on its own equals deriving all events at once (SPEC 7).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from journey.errors import ConfigError
from journey.facts import (
    AccountEventRow,
    ConflictRow,
    CustomerFacts,
    CustomerRow,
    EventStageRow,
    IdentityRow,
    StageEntryRow,
    SurveyRow,
    TransitionRow,
)
from journey.schema import Event
from processor import ids
from processor.sessions import session_row, split_sessions, timeout_micros
from processor.stages.evaluate import (
    CompiledModel,
    Evaluation,
    compile_model,
    evaluate,
)
from processor.stages.model import StageModel, preset
from processor.stitching import Customer, Key, merge_traits, stitch

# SPEC 5 scales: a score outside its survey's scale would corrupt NPS/CSAT/CES, so it is ignored.
SURVEY_SCALES: dict[str, tuple[float, float]] = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}


def survey_score(event: Event) -> tuple[str, float] | None:
    """(survey, score) of a `Survey Responded` event with a known survey and an in-scale score."""
    if event.event != "Survey Responded":
        return None
    survey = event.properties.get("survey")
    if not isinstance(survey, str) or survey.strip().lower() not in SURVEY_SCALES:
        return None
    survey = survey.strip().lower()
    score = event.properties.get("score")
    if isinstance(score, bool) or not isinstance(score, int | float | str):
        return None
    try:
        value = float(score)
    except ValueError:
        return None
    low, high = SURVEY_SCALES[survey]
    return (survey, value) if low <= value <= high else None


def account_event(customer_id: str, event: Event) -> AccountEventRow | None:
    """The membership a `group` event records (SPEC 5.1), or None for any other event."""
    if event.type != "group":
        return None
    account = event.properties.get("group_id")
    if not isinstance(account, str) or not account:
        return None
    traits = event.properties.get("group_traits")
    return AccountEventRow(event.event_id, customer_id, account, event.timestamp,
                           traits if isinstance(traits, dict) else {})


def _default_models() -> tuple[StageModel, ...]:
    return (preset("default"),)


@dataclass(frozen=True)
class CoreConfig:
    """What the journey core needs to know: session rules and the active stage models."""

    session_timeout_s: float = 1800
    split_on_campaign_change: bool = True
    models: tuple[StageModel, ...] = field(default_factory=_default_models)
    compiled: tuple[CompiledModel, ...] = field(init=False, repr=False, compare=False)
    session_timeout_us: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.session_timeout_s <= 0:
            raise ConfigError("session_timeout_s must be positive", value=self.session_timeout_s)
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ConfigError("two active stage models have the same name", models=names)
        # Frozen, so set through object; compiling once per config keeps derive() cheap.
        object.__setattr__(self, "compiled", tuple(compile_model(m) for m in self.models))
        object.__setattr__(self, "session_timeout_us", timeout_micros(self.session_timeout_s))


def unique_sorted(events: Iterable[Event]) -> list[Event]:
    """Events without duplicate event_ids (the first one given wins), in (time, event_id) order."""
    seen: dict[str, Event] = {}
    for event in events:
        seen.setdefault(event.event_id, event)
    return sorted(seen.values(), key=Event.order_key)


def derive(events: Iterable[Event], config: CoreConfig) -> list[CustomerFacts]:
    """Derive every customer's facts from a set of events closed under linking, by customer_id."""
    return [facts for facts, _ in derive_customers(events, config)]


def derive_customers(
    events: Iterable[Event], config: CoreConfig
) -> list[tuple[CustomerFacts, list[Event]]]:
    """derive(), with each customer's own events (in order) beside its facts."""
    stitching = stitch(unique_sorted(events))
    out = [(_customer_facts(c, stitching.key_first_seen, config), c.events)
           for c in stitching.customers]
    if stitching.refusals:
        by_customer = {id(c): facts for c, (facts, _) in zip(stitching.customers, out, strict=True)}
        for event, (key_type, value), holder, owner in stitching.refusals:
            facts = by_customer[id(owner)]
            facts.identity_conflicts.append(ConflictRow(
                facts.customer.customer_id, key_type, value, event.event_id, event.timestamp,
                by_customer[id(holder)].customer.customer_id))
    out.sort(key=lambda item: item[0].customer.customer_id)
    return out


def _customer_facts(
    customer: Customer, key_first_seen: dict[Key, datetime], config: CoreConfig
) -> CustomerFacts:
    events = customer.events
    primary = events[0].keys[0]
    cid = ids.customer_id(customer.user_id, primary.type, primary.value)
    evaluations = [evaluate(m, events) for m in config.compiled]

    converted_at: dict[int, list[str]] = {}  # event index -> models it converted
    for model, ev in zip(config.compiled, evaluations, strict=True):
        for stage, index, _ in ev.entries:
            if stage == model.conversion:
                converted_at.setdefault(index, []).append(model.model.name)

    facts = CustomerFacts(customer=_customer_row(cid, customer, events))
    facts.identities = [IdentityRow(cid, t, v, key_first_seen[(t, v)]) for t, v in customer.keys]
    session_of: list[str] = [""] * len(events)
    for indices in split_sessions(
        events, config.session_timeout_s, config.split_on_campaign_change
    ):
        sid = ids.session_id(cid, events[indices[0]].event_id)
        converted = tuple(name for i in indices for name in converted_at.get(i, ()))
        ordered = tuple(m.model.name for m in config.compiled if m.model.name in converted)
        facts.sessions.append(session_row(sid, cid, [events[i] for i in indices], ordered))
        for i in indices:
            session_of[i] = sid
    facts.account_events = [row for e in events if (row := account_event(cid, e)) is not None]
    responses = [(i, *r) for i, e in enumerate(events) if (r := survey_score(e)) is not None]
    for model, ev in zip(config.compiled, evaluations, strict=True):
        _model_facts(facts, cid, model, ev, events, session_of, responses)
    return facts


def _customer_row(cid: str, customer: Customer, events: Sequence[Event]) -> CustomerRow:
    first, last = events[0], events[-1]
    traits: dict[str, Any] = merge_traits(events)
    return CustomerRow(
        customer_id=cid,
        user_id=customer.user_id,
        first_seen=first.timestamp,
        last_seen=last.timestamp,
        event_count=len(events),
        first_channel=first.channel,
        first_source=first.source,
        first_medium=first.medium,
        traits=traits,
    )


def _model_facts(
    facts: CustomerFacts,
    cid: str,
    model: CompiledModel,
    ev: Evaluation,
    events: Sequence[Event],
    session_of: Sequence[str],
    responses: Sequence[tuple[int, str, float]],
) -> None:
    name, names = model.model.name, model.names
    at_names, own_names = model.at_names, model.own_names
    for stage, index, inferred in ev.entries:
        event = events[index]
        facts.stage_entries.append(
            StageEntryRow(cid, name, names[stage], stage, event.timestamp, inferred, event.event_id)
        )
    rows = facts.event_stages
    for event, sid, own, at in zip(events, session_of, ev.own, ev.at, strict=True):
        rows.append(
            EventStageRow(
                event.event_id,
                cid,
                sid,
                name,
                event.timestamp,
                event.event,
                event.channel,
                own_names[own],
                at_names[at],
                at,
            )
        )
    for i, survey, score in responses:
        event = events[i]
        facts.surveys.append(
            SurveyRow(event.event_id, cid, name, event.timestamp, survey, score, at_names[ev.at[i]])
        )
    for (src, dst), count in sorted(ev.transitions.items()):
        facts.transitions.append(TransitionRow(cid, name, names[src], names[dst], count))

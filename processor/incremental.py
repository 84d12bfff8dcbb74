"""The incremental journey core: one customer's compact running state, extended event by event.

`derive` (processor/derive.py) recomputes a customer from all of its events. Here a `Running`
state with no per-event data (about 0.8 KB in memory with the default model, under 300 bytes
encoded; bench/bench_incremental.py) is extended in O(1) by each next event of the customer
(after its last one in (timestamp, event_id) order) and yields only the rows that changed.
Both paths share the session fold, the stage step, the ids and the survey rule, so the rows are
the same (SPEC 7); tests/processor/test_incremental.py proves it against derive.

Which events may take this path (in order, not merging customers, no new user_id) is for the
caller to judge; a customer that cannot is re-derived and `resume`d from its events.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import msgspec

from journey.errors import FatalError
from journey.facts import EventStageRow, IdentityRow, StageEntryRow, SurveyRow
from journey.schema import SESSION_CHANNELS, Channel, Event
from processor import ids
from processor.delta import Delta
from processor.derive import CoreConfig, account_event, survey_score
from processor.sessions import (
    OpenSession,
    add_event,
    campaign_of,
    micros,
    open_session,
    share_strings,
    splits,
)
from processor.stages.evaluate import Progress, advance
from processor.stages.evaluate import start as start_progress
from processor.stitching import merge_traits

__all__ = ["Delta", "NotIncrementalError", "Running", "decode", "encode", "extend", "resume",
           "start", "traits"]


class NotIncrementalError(FatalError):
    """An event that cannot extend a running state: the caller must re-derive the customer."""


class Running(msgspec.Struct, array_like=True, gc=False):
    """The running state of one customer over all active models (no per-event data)."""

    customer_id: str
    user_id: str | None
    event_count: int = 0
    first_seen: int = 0  # microseconds since the epoch
    last_seen: int = 0
    first_channel: Channel = "other"  # a Literal: decoded to the one shared string
    first_source: str = ""
    first_medium: str = ""
    traits: bytes = b""  # JSON of the merged traits (as they arrived in JSON); b"" for none
    session: OpenSession | None = None  # the current web/app session
    models: tuple[Progress, ...] = ()  # one per model of config.compiled, in that order


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(Running)
_TRAITS_ENCODER = msgspec.json.Encoder()
_TRAITS_DECODER = msgspec.json.Decoder(dict[str, Any])


def start(customer_id: str, user_id: str | None, config: CoreConfig) -> Running:
    """The running state of a customer before its first event."""
    return Running(customer_id, user_id, models=tuple(start_progress(m) for m in config.compiled))


def resume(
    customer_id: str, user_id: str | None, events: Sequence[Event], config: CoreConfig
) -> Running:
    """The running state after a customer's events, given in (timestamp, event_id) order."""
    run = start(customer_id, user_id, config)
    for event in events:
        _apply(run, event, config, None)
    return run


def encode(run: Running) -> bytes:
    """The running state as msgpack bytes."""
    return _ENCODER.encode(run)


def decode(data: bytes) -> Running:
    """A running state from `encode`'s bytes."""
    run = _DECODER.decode(data)
    run.first_source, run.first_medium = sys.intern(run.first_source), sys.intern(run.first_medium)
    if run.session is not None:
        share_strings(run.session)
    return run


def traits(run: Running) -> dict[str, Any]:
    """The customer's merged traits (SPEC 2.3), a new dict."""
    return _TRAITS_DECODER.decode(run.traits) if run.traits else {}


def extend(
    run: Running, event: Event, new_keys: Sequence[tuple[str, str]], config: CoreConfig
) -> Delta:
    """Apply the customer's next event to `run`; what it changed.

    `new_keys` are the event's keys the customer did not hold before, in identity order.
    """
    delta = Delta(run, config)
    _apply(run, event, config, delta)
    ts = event.timestamp
    if new_keys:
        delta.identities = [IdentityRow(run.customer_id, t, v, ts) for t, v in new_keys]
    delta.event_count, delta.last_seen, delta.traits = run.event_count, ts, run.traits
    delta.transitions = tuple([p.transitions for p in run.models])  # immutable: safely shared
    return delta


def _check(run: Running, event: Event, at: int, config: CoreConfig) -> None:
    if len(run.models) != len(config.compiled):
        raise NotIncrementalError(
            "running state of another model set", event_id=event.event_id
        )
    if run.event_count and at < run.last_seen:
        raise NotIncrementalError(
            "event before the customer's last one", event_id=event.event_id
        )
    primary = event.keys[0]  # a user_id key, if any, is the primary one
    if primary.type == "user_id" and primary.value != run.user_id:
        raise NotIncrementalError(
            "event brings a user_id the customer does not hold", event_id=event.event_id
        )


def _apply(run: Running, event: Event, config: CoreConfig, delta: Delta | None) -> None:
    at = micros(event.timestamp)
    _check(run, event, at, config)
    if run.event_count == 0:
        run.first_seen = at
        # Interned: these few distinct values are then shared by every customer in memory.
        run.first_channel = event.channel
        run.first_source = sys.intern(event.source)
        run.first_medium = sys.intern(event.medium)
    run.last_seen = at
    run.event_count += 1
    # Most events carry no traits: skip the merge (and the JSON round trip) for them.
    added = merge_traits((event,)) if event.type == "identify" or event.context else None
    if added:
        merged = traits(run)
        merged.update(added)
        run.traits = _TRAITS_ENCODER.encode(merged)
    owns: list[int] = []
    converted = 0
    entries: list[tuple[int, int, int, int]] = []  # (model index, before, after, matched)
    for m, (model, progress) in enumerate(zip(config.compiled, run.models, strict=True)):
        own, before, matched = advance(model, progress, event)
        after = progress.reached
        owns.append(own)
        if after > before:
            entries.append((m, before, after, matched))
            if before < model.conversion <= after:
                converted |= 1 << m
    sid = _place(run, event, at, converted, config, delta)
    if delta is not None:
        _stage_rows(run, event, sid, owns, entries, config, delta)


def _place(
    run: Running, event: Event, at: int, converted: int, config: CoreConfig, delta: Delta | None
) -> str:
    """Put the event in its session (SPEC 3); its session_id. Records the session upsert."""
    cid = run.customer_id
    if event.channel not in SESSION_CHANNELS:  # a single touch: a session of its own
        touch = open_session(ids.session_id(cid, event.event_id), event)
        touch.converted = converted
        if delta is not None:
            delta.sessions[touch.session_id] = touch
        return touch.session_id
    session = run.session
    if session is None or splits(
        at - session.end,
        campaign_of(event),
        session.current,
        config.session_timeout_us,
        config.split_on_campaign_change,
    ):
        session = run.session = open_session(ids.session_id(cid, event.event_id), event)
    else:
        add_event(session, event, at)
    session.converted |= converted
    if delta is not None:
        # A copy: the open session goes on changing while this delta may still be read.
        delta.sessions[session.session_id] = msgspec.structs.replace(session)
    return session.session_id


def _stage_rows(
    run: Running,
    event: Event,
    sid: str,
    own: list[int],
    entries: list[tuple[int, int, int, int]],
    config: CoreConfig,
    delta: Delta,
) -> None:
    cid, eid, ts = run.customer_id, event.event_id, event.timestamp
    for m, before, after, matched in entries:
        model = config.compiled[m]
        name, names = model.model.name, model.names
        delta.stage_entries.extend(
            StageEntryRow(cid, name, names[s], s, ts, not (matched >> s) & 1, eid)
            for s in range(before + 1, after + 1)
        )
    account = account_event(cid, event)
    if account is not None:
        delta.account_events.append(account)
    response = survey_score(event)
    for model, progress, own_stage in zip(config.compiled, run.models, own, strict=True):
        at = progress.reached
        name = model.model.name
        delta.event_stages.append(
            EventStageRow(
                eid,
                cid,
                sid,
                name,
                ts,
                event.event,
                event.channel,
                model.own_names[own_stage],
                model.at_names[at],
                at,
            )
        )
        if response is not None:
            survey, score = response
            delta.surveys.append(SurveyRow(eid, cid, name, ts, survey, score, model.at_names[at]))



"""The processor's record of erased keys (SPEC 2.4): which events a replay must not bring back."""

from __future__ import annotations

from journey.hashing import key_hash
from journey.schema import Event
from processor.sessions import micros

Erased = dict[int, int]  # erased key hash -> time of its latest erasure, in µs


def not_erased(erased: Erased, events: list[Event]) -> list[Event]:
    """The events to keep: none with an erased key received before that key's erasure."""
    if not erased:
        return events
    return [e for e in events if all(
        erased.get(key_hash(k.type, k.value), -1) < micros(e.received_at) for k in e.keys)]


def touches(erased: Erased, events: list[Event]) -> bool:
    """Whether any event carries a key that was erased (and so is no new key to the graph)."""
    return bool(erased) and any(
        key_hash(k.type, k.value) in erased for e in events for k in e.keys)

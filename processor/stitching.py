"""Identity stitching (SPEC 2.1-2.3): which customer each event belongs to, and its traits.

Decisions the SPEC leaves open, made here once:
- Within an event, each other key is linked to the primary key in priority order; an alias
  event's `previous_id` is linked to its `user_id` (or primary key) after them.
- "An existing key with that value" (alias, SPEC 2.1) is judged over every key carried by the
  events being stitched, whatever their time; with several, the highest-priority type wins.
  That keeps the answer independent of arrival order (SPEC 7).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from journey.schema import Event, key_rank

Key = tuple[str, str]  # (type, value)


@dataclass(slots=True)
class Customer:
    """One stitched customer: its keys (by priority), its events (by event time)."""

    user_id: str | None
    keys: list[Key] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


@dataclass(slots=True)
class Stitching:
    """The customers of a set of events, and the first time each key was seen."""

    customers: list[Customer]
    key_first_seen: dict[Key, datetime]
    # SPEC 5.1 identity conflicts: (event, refused key, its customer, the event's customer).
    refusals: list[tuple[Event, Key, Customer, Customer]] = field(default_factory=list)

    @property
    def refused_links(self) -> int:
        """How many links were refused (SPEC 2.2)."""
        return len(self.refusals)


class _Keys:
    """Union-find over keys where each root remembers the one user_id its customer may hold."""

    def __init__(self) -> None:
        self.parent: dict[Key, Key] = {}
        self.size: dict[Key, int] = {}
        self.user_id: dict[Key, str] = {}

    def add(self, key: Key) -> None:
        if key not in self.parent:
            self.parent[key] = key
            self.size[key] = 1
            if key[0] == "user_id":
                self.user_id[key] = key[1]

    def find(self, key: Key) -> Key:
        parent = self.parent
        root = key
        while parent[root] != root:
            root = parent[root]
        while parent[key] != root:  # path compression
            parent[key], key = root, parent[key]
        return root

    def link(self, a: Key, b: Key) -> bool:
        """Join the customers of a and b; False if refused (two different user_ids)."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        ua, ub = self.user_id.get(ra), self.user_id.get(rb)
        if ua is not None and ub is not None and ua != ub:
            return False
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]
        # The root kept may be either one (by size): it takes the user_id of whichever had one.
        user = ua if ua is not None else ub
        if user is not None:
            self.user_id[ra] = user
        return True


def alias_key(previous_id: str, carried: dict[str, Key]) -> Key:
    """SPEC 2.1: previousId takes the type of an existing key with that value, else anonymous_id."""
    return carried.get(previous_id, ("anonymous_id", previous_id))


def _carried_keys(events: Sequence[Event], values: set[str]) -> dict[str, Key]:
    """For each value in `values`, the highest-priority key carrying it in `events`."""
    best: dict[str, Key] = {}
    for event in events:
        for k in event.keys:
            if k.value in values:
                old = best.get(k.value)
                if old is None or key_rank(k.type) < key_rank(old[0]):
                    best[k.value] = (k.type, k.value)
    return best


def stitch(events: Sequence[Event]) -> Stitching:
    """Stitch events that are unique and sorted by (timestamp, event_id) into customers."""
    uf = _Keys()
    first_seen: dict[Key, datetime] = {}
    refused: list[tuple[Event, Key]] = []
    previous = {e.previous_id for e in events if e.type == "alias" and e.previous_id}
    carried = _carried_keys(events, previous) if previous else {}
    for event in events:
        keys: list[Key] = [(k.type, k.value) for k in event.keys]
        if event.type == "alias" and event.previous_id:
            keys.append(alias_key(event.previous_id, carried))
        for key in keys:
            uf.add(key)
            first_seen.setdefault(key, event.timestamp)
        primary = keys[0]
        for key in keys[1:]:
            if not uf.link(key, primary):
                refused.append((event, key))
    by_root: dict[Key, Customer] = {}
    for event in events:
        root = uf.find((event.keys[0].type, event.keys[0].value))
        customer = by_root.get(root)
        if customer is None:
            customer = by_root[root] = Customer(user_id=uf.user_id.get(root))
        customer.events.append(event)
    for key in sorted(first_seen, key=lambda k: (key_rank(k[0]), k[1])):
        owner = by_root.get(uf.find(key))
        if owner is not None:  # every key's customer owns an event; be safe all the same
            owner.keys.append(key)
    refusals = [(event, key, by_root[uf.find(key)],
                 by_root[uf.find((event.keys[0].type, event.keys[0].value))])
                for event, key in refused]
    return Stitching(list(by_root.values()), first_seen, refusals)


def merge_traits(events: Iterable[Event]) -> dict[str, Any]:
    """SPEC 2.3: union of identify traits and context.traits; the latest event wins per trait.

    `events` must be in (timestamp, event_id) order. Within one event the identify traits win
    over context.traits. `group` traits describe the group, not the person, and are left out.
    """
    traits: dict[str, Any] = {}
    for event in events:
        context_traits = event.context.get("traits")
        if isinstance(context_traits, dict):
            traits.update(context_traits)
        if event.type == "identify":
            traits.update(event.traits)
    return traits

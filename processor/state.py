"""The processor's in-memory state: every stored event by component, and the derived facts of
every customer by warehouse bucket.

A micro-batch adds its new events, re-derives each affected component from all of its events (so
the result equals a batch computation over the same events, whatever the arrival order; SPEC 7),
and reports which buckets changed so the writer rewrites just those.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from journey.schema import Event
from processor.components import ComponentIndex
from processor.derive import CoreConfig, derive
from journey.facts import CustomerFacts
from warehouse.tables import bucket_of


@dataclass(frozen=True, slots=True)
class Applied:
    """What one batch changed."""

    new_events: list[Event]
    touched_buckets: set[int]


class JourneyState:
    """All events and derived customers held by one processor."""

    def __init__(self, config: CoreConfig, buckets: int) -> None:
        self._config = config
        self._buckets = buckets
        self._index = ComponentIndex()
        self._seen: set[str] = set()
        self._by_bucket: dict[int, dict[str, CustomerFacts]] = {}

    @property
    def event_count(self) -> int:
        return len(self._seen)

    @property
    def customer_count(self) -> int:
        return sum(len(b) for b in self._by_bucket.values())

    def apply(self, events: Iterable[Event]) -> Applied:
        """Add events (duplicates by event_id are dropped) and re-derive what they affect."""
        new: list[Event] = []
        for event in events:
            if event.event_id in self._seen:
                continue
            self._seen.add(event.event_id)
            new.append(event)
        if not new:
            return Applied([], set())
        touched: set[int] = set()
        for component in self._index.add(new):
            for old_id in self._index.customers_of(component):
                bucket = bucket_of(old_id, self._buckets)
                self._by_bucket.get(bucket, {}).pop(old_id, None)
                touched.add(bucket)
            facts = derive(self._index.events_of(component), self._config)
            ids = []
            for fact in facts:
                cid = fact.customer.customer_id
                bucket = bucket_of(cid, self._buckets)
                self._by_bucket.setdefault(bucket, {})[cid] = fact
                touched.add(bucket)
                ids.append(cid)
            self._index.set_customers(component, ids)
        return Applied(new, touched)

    def bucket_facts(self, buckets: Iterable[int]) -> Mapping[int, list[CustomerFacts]]:
        """The complete current facts of each listed bucket, ordered by customer id."""
        return {
            b: [self._by_bucket.get(b, {})[cid] for cid in sorted(self._by_bucket.get(b, {}))]
            for b in buckets
        }

    def all_buckets(self) -> set[int]:
        return set(range(self._buckets))

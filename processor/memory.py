"""An in-memory stand-in for the warehouse as the processor's state sees it: stored events by
key hash (the `History` the state reads a component back from) and derived tables as row lists.

It lets the journey core's streaming path run without DuckDB: in the property tests, which
compare it with one `derive()` over all events, and in the core benchmark.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from journey.facts import Changes
from journey.hashing import key_hash
from journey.schema import Event


class MemoryWarehouse:
    """Committed events and derived rows, kept in lists."""

    def __init__(self) -> None:
        self._events: dict[int, list[Event]] = {}
        self.tables: dict[str, list[Any]] = {}

    def events_by_key_hash(self, hashes: Collection[int]) -> list[Event]:
        """Stored events whose primary key hashes to one of hashes, by (timestamp, event_id)."""
        out = [e for h in set(hashes) for e in self._events.get(h, ())]
        out.sort(key=Event.order_key)
        return out

    def commit(self, events: Iterable[Event], changes: Changes) -> None:
        """Store events, then apply the deletes and the inserts, like one warehouse commit."""
        for event in events:
            primary = event.keys[0]
            self._events.setdefault(key_hash(primary.type, primary.value), []).append(event)
        for table, column, values in changes.deletes:
            rows = self.tables.get(table, [])
            self.tables[table] = [r for r in rows if getattr(r, column) not in values]
        for table, rows in changes.rows.items():
            self.tables.setdefault(table, []).extend(rows)

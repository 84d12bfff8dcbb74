"""Catching up with what other processors committed (scale-out, SPEC 6.4).

Several processors share one warehouse and each holds the whole state in memory (the identity
graph is global: one customer's keys arrive on any partition). Commits are serialized by the
warehouse's commit lock; before a processor applies a batch under that lock it brings its state
up to the committed snapshot, from the rows committed since the snapshot it last saw (DuckLake's
`snapshot_id` column of each row):
- the new events' id hashes go into the dedup set (an event two members read around a partition
  hand-over is kept once);
- every customer whose running state was rewritten is read back with its keys; the components
  holding those keys (and the keys of new erasures and alias events) drop their running states
  and are refilled from the warehouse: the rewritten customers plus the others those components
  held, as committed now;
- new erasures and alias value nodes are added as at start-up.
A rebuild (a request another processor served, perhaps under other stage models) rewrites every
derived row: the processor stops with ModelsChangedError, and its restart restores from it.
A component another processor touched is re-read whole, so the state equals the one a single
processor would hold after the same commits (tests/processor/test_shared.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from journey.hashing import key_hash
from processor.errors import ModelsChangedError
from processor.restore import ALIASES, customers_sql, stored_aliases, stored_customers
from processor.sessions import micros
from processor.state import JourneyState
from warehouse.writer import WarehouseWriter

_SINCE = "snapshot_id > ?"


@dataclass(frozen=True, slots=True)
class Caught:
    """What one catch-up read."""

    events: int
    customers: int
    erasures: int


def catch_up(state: JourneyState, writer: WarehouseWriter, since: int) -> Caught:
    """Apply to `state` every commit after snapshot `since` (made by other processors)."""
    params = (since,)
    for batch in writer.scan(f"SELECT max(snapshot_id) FROM models WHERE {_SINCE}", params):
        snapshot = batch.column(0)[0].as_py()
        if snapshot is not None:
            raise ModelsChangedError(
                "another processor rebuilt the warehouse (a rebuild request, perhaps under "
                "other stage models); restart this processor to go on from it",
                snapshot=snapshot)
    hashes = [b.column(0).to_numpy(zero_copy_only=False).astype(np.int64)
              for b in writer.scan(f"SELECT event_hash FROM events WHERE {_SINCE}", params)]
    events = sum(len(h) for h in hashes)
    if events:
        state.seen.update(np.concatenate(hashes).tolist())
    touched: set[int] = set()
    erasures = 0
    for batch in writer.scan(f"SELECT key_hash, erased_at FROM erasures WHERE {_SINCE}", params):
        for h, at in zip(*batch.to_pydict().values(), strict=True):
            state.erased[h] = max(state.erased.get(h, micros(at)), micros(at))
            touched.add(h)
            erasures += 1
    changed = list(stored_customers(writer, customers_sql(_SINCE), params))
    aliases = list(stored_aliases(writer, f"{ALIASES} AND {_SINCE}", params))
    for _, keys, component, _ in changed:
        touched.update(key_hash(t, v) for t, v in keys)
        if component:
            touched.add(component)
    touched.update(key_hash(*primary) for primary, _ in aliases)
    # The customers those components held that nobody rewrote are read back as they are.
    others = state.drop_components(touched) - {cid for cid, *_ in changed}
    if others:
        changed += stored_customers(writer, customers_sql("list_contains(?, customer_id)"),
                                    (sorted(others),))
    for _, keys, component, blob in changed:
        state.restore_customer(keys, component, blob)
    for primary, previous_id in aliases:
        state.restore_alias(primary, previous_id)
    return Caught(events, len(changed), erasures)

"""The processor's state: it follows customers, not events (SPEC 6.4).

In memory: the identity graph over key hashes (processor/graph.py), the set of stored event-id
hashes (processor/dedup.py) and, per identity component, the small running state of each of its
customers (processor/incremental.py). Raw events live in the warehouse once committed.

A micro-batch is applied component by component:
- an event at or after its customer's last event, that merges nothing, brings no new user_id and
  is no alias, *extends* the customer's running state in O(1) (the incremental path);
- a component that a batch merges with another, or that gets a late event, a new user_id, an
  alias or a refused link, is *re-derived* with the reference `derive()` from its stored events
  (read back from the warehouse by key hash) plus the batch's events, then resumed.
Both paths give exactly what `derive()` over all events gives (SPEC 7; tests/processor).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from journey.facts import FACT_TABLES, Changes, StateRow
from journey.hashing import event_hash, key_hash
from journey.schema import Event, IdentityKey
from processor import erased, ids, incremental
from processor.dedup import EventIdSet
from processor.derive import CoreConfig, derive_customers
from processor.graph import KeyGraph, value_hash
from processor.incremental import Running
from processor.sessions import micros

DERIVED = (*FACT_TABLES, "customer_state")


# A component's encoded running states: one alone is kept as its bytes, since a 1-tuple around
# it costs 56 bytes more (81 MB for the 1.45M customers of 10M events, nearly all alone).
Held = bytes | tuple[bytes, ...] | None


def _states(held: Held) -> tuple[bytes, ...]:
    if held is None:
        return ()
    return (held,) if isinstance(held, bytes) else held


def _held(states: Sequence[bytes]) -> Held:
    if not states:
        return None
    return states[0] if len(states) == 1 else tuple(states)


class History(Protocol):
    """Where the stored events of a component are read back from (the warehouse)."""

    def events_by_key_hash(self, hashes: Collection[int]) -> list[Event]: ...


@dataclass(slots=True)
class Applied:
    """What one batch changed: the events to store and the derived rows to write."""

    new_events: list[Event] = field(default_factory=list)
    changes: Changes = field(default_factory=Changes)
    extended: int = 0  # customers extended in place
    rederived: int = 0  # components re-derived from their history


@dataclass(slots=True)
class _Group:
    """The batch's events of one component and the running states it absorbed."""

    events: list[Event] = field(default_factory=list)
    olds: list[Running] = field(default_factory=list)
    new_keys: set[int] = field(default_factory=set)  # key hashes first seen in this batch
    alias: bool = False


class JourneyState:
    """Identity graph, dedup set and per-customer running states of one processor."""

    def __init__(self, config: CoreConfig, history: History) -> None:
        self.config = config
        self.history = history
        self.graph = KeyGraph()
        self.seen = EventIdSet()
        self.alias_values: set[int] = set()  # value hashes named by an alias previousId
        self._alias_probe: set[int] = set()  # their values' built-in hashes (this process only)
        self.key_types: set[str] = set()
        # Per graph node: the running states of the component rooted there (None elsewhere),
        # encoded: about 300 bytes instead of 800 as objects; a batch decodes what it touches.
        self._runs: list[Held] = []
        self.customers = 0
        # SPEC 2.4: erased key hash -> erasure time (µs); older events with such a key are dropped.
        self.erased: erased.Erased = {}

    # -- the batch ---------------------------------------------------------------------------

    def apply(self, events: Iterable[Event]) -> Applied:
        """Add a batch (duplicates by event_id dropped); return what to store and write."""
        out = Applied()
        fresh = self._dedup(erased.not_erased(self.erased, list(events)))
        if not fresh:
            return out
        out.new_events = fresh
        groups = self._link(fresh)
        rederive: dict[int, _Group] = {}
        for root, group in groups.items():
            group.events.sort(key=Event.order_key)
            if self._extendable(group):
                self._extend(root, group, out.changes)
                out.extended += 1
            else:
                rederive[root] = group
        if rederive:
            self._rederive(rederive, out.changes)
            out.rederived += len(rederive)
        return out

    def link_only(self, linked: Iterable[tuple[Sequence[IdentityKey], str | None]]) -> None:
        """Add stored events' links to the graph, deriving nothing (a rebuild's first pass):
        per event its keys and, for an alias, its previousId. The graph is the one _link builds
        from the same events; linking is idempotent, so a resent copy needs no dedup."""
        graph = self.graph
        touched: list[int] = []  # unused: nothing is derived here
        # Hashed once: a rebuild's chunk holds more keys than key_hash's cache.
        hashed = [(keys, alias, [key_hash(k.type, k.value) for k in keys])
                  for keys, alias in linked]
        graph.prefetch(h for _, _, hashes in hashed for h in hashes)
        for keys, alias, hashes in hashed:
            first = -1
            for key, h in zip(keys, hashes, strict=True):
                node = graph.node(h)
                if node is None:
                    node = self._new_key(h, key.type, key.value, touched)
                if first < 0:
                    first = node
                else:
                    graph.union(first, node)
            if alias:
                graph.union(first, self._alias_value(alias, touched))
            touched.clear()

    def _dedup(self, events: list[Event]) -> list[Event]:
        hashes = [event_hash(e.event_id) for e in events]
        known = self.seen.known(hashes)
        fresh: list[Event] = []
        batch: set[int] = set()
        for event, h, old in zip(events, hashes, known, strict=True):
            if old or h in batch:
                continue
            batch.add(h)
            fresh.append(event)
        self.seen.update(batch)
        return fresh

    def _link(self, events: list[Event]) -> dict[int, _Group]:
        """Add the batch's keys and links to the graph; group its events by final component."""
        graph = self.graph
        touched: list[int] = []  # roots (as before this batch) whose components the batch joins
        created: set[int] = set()
        primaries: list[int] = []
        fresh_keys: list[list[tuple[int, str, str]]] = []  # per event: its keys new to the graph
        graph.prefetch(key_hash(k.type, k.value) for event in events for k in event.keys)
        for event in events:
            nodes: list[int] = []
            new: list[tuple[int, str, str]] = []
            for key in event.keys:
                h = key_hash(key.type, key.value)
                node = graph.node(h)
                if node is None:
                    node = self._new_key(h, key.type, key.value, touched)
                    created.add(h)
                    new.append((h, key.type, key.value))
                elif h in created:
                    new.append((h, key.type, key.value))
                else:
                    touched.append(graph.find(node))
                nodes.append(node)
            if event.type == "alias" and event.previous_id:
                nodes.append(self._alias_value(event.previous_id, touched))
            for node in nodes[1:]:
                touched.extend(graph.union(nodes[0], node))
            primaries.append(nodes[0])
            fresh_keys.append(new)
        groups: dict[int, _Group] = {}
        for event, node, new in zip(events, primaries, fresh_keys, strict=True):
            group = groups.setdefault(graph.find(node), _Group())
            group.events.append(event)
            group.alias = group.alias or (event.type == "alias" and bool(event.previous_id))
            for h, _, value in new:
                group.new_keys.add(h)
                # A new key whose value an alias named: the alias key's type may change.
                if hash(value) in self._alias_probe and value_hash(value) in self.alias_values:
                    group.alias = True
        runs = self._runs
        for old_root in dict.fromkeys(touched):
            held = runs[old_root]
            if held is not None:
                runs[old_root] = None
                root = graph.find(old_root)
                # A component joined through an alias value only has no event here: it is
                # re-derived too.
                groups.setdefault(root, _Group()).olds.extend(map(incremental.decode,
                                                                  _states(held)))
        return groups

    def _new_key(self, h: int, key_type: str, value: str, touched: list[int]) -> int:
        node, _ = self.graph.add(h)
        self._runs.append(None)
        self.key_types.add(key_type)
        if hash(value) in self._alias_probe:  # cheap pre-check before the stable hash
            other = self.graph.node(value_hash(value))
            if other is not None:
                touched.extend(self.graph.union(node, other))
        return node

    def _alias_value(self, value: str, touched: list[int]) -> int:
        """The value node of an alias previousId, linked to every key with that value."""
        vh = value_hash(value)
        node, created = self.graph.add(vh)
        if created:
            self._runs.append(None)
            self.alias_values.add(vh)
            self._alias_probe.add(hash(value))
            for key_type in self.key_types:
                other = self.graph.node(key_hash(key_type, value))
                if other is not None:
                    touched.extend(self.graph.union(node, other))
        else:
            touched.append(self.graph.find(node))
        return node

    # -- the incremental path ----------------------------------------------------------------

    def _extendable(self, group: _Group) -> bool:
        # A key of an erased customer is still a graph node, so it is not "new" to the graph;
        # re-deriving gives the new customer all its keys, as derive() over what is stored does.
        if group.alias or erased.touches(self.erased, group.events):
            return False
        users = {k.value for e in group.events for k in e.keys if k.type == "user_id"}
        if not group.olds:
            return len(users) <= 1
        if len(group.olds) != 1:
            return False
        run = group.olds[0]
        if users and users != {run.user_id}:
            return False
        # Strictly later: a tie in time is ordered by event_id, which the state does not keep.
        return micros(group.events[0].timestamp) > run.last_seen

    def _extend(self, root: int, group: _Group, changes: Changes) -> None:
        if group.olds:
            run = group.olds[0]
        else:
            first = group.events[0]
            users = {k.value for e in group.events for k in e.keys if k.type == "user_id"}
            user_id = next(iter(users)) if users else None
            cid = ids.customer_id(user_id, first.keys[0].type, first.keys[0].value)
            run = incremental.start(cid, user_id, self.config)
            self.customers += 1
        pending: incremental.Delta | None = None
        given: set[int] = set()
        for event in group.events:
            new_keys = []
            for key in event.keys:
                h = key_hash(key.type, key.value)
                if h in group.new_keys and h not in given:
                    given.add(h)
                    new_keys.append((key.type, key.value))
            delta = incremental.extend(run, event, new_keys, self.config)
            if pending is None:
                pending = delta
            else:
                pending.merge(delta)
        blob = incremental.encode(run)
        self._runs[root] = blob
        cid = run.customer_id
        assert pending is not None  # a group holds at least one event
        if group.olds:
            changes.delete("customers", "customer_id", (cid,))
            changes.delete("transitions", "customer_id", (cid,))
            changes.delete("customer_state", "customer_id", (cid,))
            changes.delete("sessions", "session_id", pending.sessions)
        changes.add_facts(pending.facts())
        changes.add("customer_state", [StateRow(cid, 0, blob)])

    # -- the re-derivation path --------------------------------------------------------------

    def _rederive(self, groups: dict[int, _Group], changes: Changes) -> None:
        graph = self.graph
        wanted: set[int] = set()
        for root, group in groups.items():
            if group.olds:
                wanted.update(graph.members(root))
        stored: dict[int, list[Event]] = {}
        if wanted:
            history = self.history.events_by_key_hash(wanted)
            primaries = [key_hash(e.keys[0].type, e.keys[0].value) for e in history]
            graph.prefetch(primaries)
            for event, h in zip(history, primaries, strict=True):
                node = graph.node(h)
                if node is not None:
                    stored.setdefault(graph.find(node), []).append(event)
            # A batch late in a 10M log re-derives up to 7k components: their stored events are
            # let go group by group below, as the derived rows that replace them grow.
            del history, primaries
        gone: set[str] = set()
        for root, group in groups.items():
            gone.update(run.customer_id for run in group.olds)
            self.customers -= len(group.olds)
            derived = derive_customers([*stored.pop(root, ()), *group.events], self.config)
            tag = min(graph.members(root)) if len(derived) > 1 else 0
            runs: list[bytes] = []
            for facts, events in derived:
                run = incremental.resume(
                    facts.customer.customer_id, facts.customer.user_id, events, self.config)
                blob = incremental.encode(run)
                runs.append(blob)
                gone.add(run.customer_id)
                changes.add_facts(facts)
                changes.add("customer_state", [StateRow(run.customer_id, tag, blob)])
            self._runs[root] = _held(runs)
            self.customers += len(runs)
        # Deletes run before inserts: replacing a customer is a delete plus its new rows.
        for table in DERIVED:
            changes.delete(table, "customer_id", gone)

    # -- erasure -----------------------------------------------------------------------------

    def forget(self, customer_id: str, hashes: Collection[int], erased_at: int) -> None:
        """Drop an erased customer's running state (its neighbours in a component stay) and
        remember its key hashes, so older events with those keys are dropped from now on."""
        for h in hashes:
            self.erased[h] = max(self.erased.get(h, erased_at), erased_at)
        graph = self.graph
        roots = {graph.find(n) for h in hashes if (n := graph.node(h)) is not None}
        for root in roots:
            held = _states(self._runs[root])
            kept = [b for b in held if incremental.decode(b).customer_id != customer_id]
            self.customers -= len(held) - len(kept)
            self._runs[root] = _held(kept)

    # -- restoring ---------------------------------------------------------------------------

    def restore_customer(self, keys: list[tuple[str, str]], component: int, state: bytes) -> None:
        """Put back one stored customer (its encoded running state): its keys linked together
        (and to its component's)."""
        graph = self.graph
        nodes: list[int] = []
        for key_type, value in keys:
            node, created = self._restore_node(key_hash(key_type, value))
            nodes.append(node)
            # A key another processor saw first may carry a value an alias named here before:
            # link it as _new_key does (at start-up no alias is known yet, so this never runs).
            if created and hash(value) in self._alias_probe:
                other = graph.node(value_hash(value))
                if other is not None:
                    nodes.append(other)
        self.key_types.update(t for t, _ in keys)
        if component:
            nodes.append(self._restore_node(component)[0])
        held: tuple[bytes, ...] = ()
        for node in dict.fromkeys(graph.find(n) for n in nodes):
            held += _states(self._runs[node])
            self._runs[node] = None
        for node in nodes[1:]:
            graph.union(nodes[0], node)
        self._runs[graph.find(nodes[0])] = _held((*held, state))
        self.customers += 1

    def restore_alias(self, primary: tuple[str, str], previous_id: str) -> None:
        """Put back the value node of a stored alias event (after every customer is back)."""
        touched: list[int] = []
        node = self._alias_value(previous_id, touched)
        other, _ = self._restore_node(key_hash(*primary))
        touched.extend(self.graph.union(node, other))
        held: tuple[bytes, ...] = ()
        for root in dict.fromkeys(touched):
            held += _states(self._runs[root])
            self._runs[root] = None
        self._runs[self.graph.find(node)] = _held(held)

    def _restore_node(self, h: int) -> tuple[int, bool]:
        node, created = self.graph.add(h)
        if created:
            self._runs.append(None)
        return node, created

    def drop_components(self, hashes: Iterable[int]) -> set[str]:
        """Forget the running states of the components holding any of these key hashes (another
        processor rewrote them); the ids of the customers dropped, to be read back."""
        graph = self.graph
        dropped: set[str] = set()
        for root in {graph.find(n) for h in hashes if (n := graph.node(h)) is not None}:
            held = _states(self._runs[root])
            if not held:
                continue
            self._runs[root] = None
            self.customers -= len(held)
            dropped.update(incremental.decode(blob).customer_id for blob in held)
        return dropped

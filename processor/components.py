"""Which events must be derived together: connected components of identity keys.

The streaming processor adds each micro-batch here, then re-derives only the components it
touched. A component is a connected component of keys linked by any event (the user_id refusal
of SPEC 2.2 is ignored, so a component may hold several customers), where an alias previousId is
linked by value to every key with that value. A component is therefore closed under linking, and
deriving each one alone equals deriving all events at once (SPEC 7).
"""

from __future__ import annotations

from collections.abc import Iterable

from journey.schema import Event


class ComponentIndex:
    """Union-find over identity keys (with path compression) holding each component's events."""

    def __init__(self) -> None:
        self._parent: list[int] = []
        self._key_node: dict[tuple[str, str], int] = {}
        self._value_node: dict[str, int] = {}  # only for values named by an alias previousId
        self._keys_by_value: dict[str, list[int]] = {}
        self._events: dict[int, list[Event]] = {}
        self._customers: dict[int, set[str]] = {}
        self._seen: set[str] = set()

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, events: Iterable[Event]) -> set[int]:
        """Add events (duplicate event_ids are ignored); return the components they touched."""
        touched: list[int] = []
        for event in events:
            if event.event_id in self._seen:
                continue
            self._seen.add(event.event_id)
            primary = self._key(event.keys[0].type, event.keys[0].value)
            for key in event.keys[1:]:
                self._union(primary, self._key(key.type, key.value))
            if event.type == "alias" and event.previous_id:
                self._union(primary, self._value(event.previous_id))
            self._events[self._find(primary)].append(event)
            touched.append(primary)
        return {self._find(node) for node in touched}

    def find(self, component: int) -> int:
        """The current id of a component (ids change when components merge)."""
        return self._find(component)

    def component_of(self, key_type: str, value: str) -> int | None:
        """The component holding a key, if it was seen."""
        node = self._key_node.get((key_type, value))
        return None if node is None else self._find(node)

    def events_of(self, component: int) -> list[Event]:
        """Every event of a component, in arrival order."""
        return list(self._events.get(self._find(component), ()))

    def customers_of(self, component: int) -> set[str]:
        """The customer_ids last derived for a component (and for those merged into it)."""
        return set(self._customers.get(self._find(component), ()))

    def set_customers(self, component: int, customer_ids: Iterable[str]) -> None:
        """Record the customer_ids just derived for a component."""
        self._customers[self._find(component)] = set(customer_ids)

    def _new_node(self) -> int:
        node = len(self._parent)
        self._parent.append(node)
        self._events[node] = []
        return node

    def _key(self, key_type: str, value: str) -> int:
        node = self._key_node.get((key_type, value))
        if node is None:
            node = self._key_node[(key_type, value)] = self._new_node()
            self._keys_by_value.setdefault(value, []).append(node)
            if value in self._value_node:
                self._union(node, self._value_node[value])
        return node

    def _value(self, value: str) -> int:
        node = self._value_node.get(value)
        if node is None:
            node = self._value_node[value] = self._new_node()
            for key in self._keys_by_value.get(value, ()):
                self._union(node, key)
        return node

    def _find(self, node: int) -> int:
        parent = self._parent
        root = node
        while parent[root] != root:
            root = parent[root]
        while parent[node] != root:
            parent[node], node = root, parent[node]
        return root

    def _union(self, a: int, b: int) -> None:
        ra, rb = self._find(a), self._find(b)
        if ra == rb:
            return
        events_a, events_b = self._events[ra], self._events[rb]
        if len(events_a) < len(events_b):
            ra, rb, events_a, events_b = rb, ra, events_b, events_a
        self._parent[rb] = ra
        events_a.extend(events_b)  # keep the larger list, move the smaller one
        del self._events[rb]
        merged = self._customers.pop(rb, None)
        if merged:
            self._customers.setdefault(ra, set()).update(merged)

"""ComponentIndex: which events are derived together, so that streaming equals batch (SPEC 7)."""

from __future__ import annotations

from typing import Any

from journey.facts import CustomerFacts
from journey.schema import Event
from processor.components import ComponentIndex
from processor.derive import CoreConfig, derive


def _ids(index: ComponentIndex, component: int) -> set[str]:
    return {e.event_id for e in index.events_of(component)}


def test_7_components_merge_when_an_event_links_them(make: Any) -> None:
    index = ComponentIndex()
    [web] = index.add([make("w", 0, anon="A")])
    [store] = index.add([make("s", 5, email="e@x.org", channel="store")])
    assert web != store
    index.set_customers(web, {"c-web"})
    index.set_customers(store, {"c-store"})
    [merged] = index.add([make("l", 9, anon="A", email="e@x.org")])
    assert _ids(index, merged) == {"w", "s", "l"}
    assert index.customers_of(merged) == {"c-web", "c-store"}  # both are stale now
    assert index.find(web) == index.find(store) == merged
    assert index.component_of("email", "e@x.org") == merged
    assert index.component_of("email", "nobody@x.org") is None


def test_7_duplicate_event_ids_are_ignored(make: Any) -> None:
    index = ComponentIndex()
    index.add([make("a", 0, anon="A")])
    assert index.add([make("a", 0, anon="A"), make("a", 99, anon="B")]) == set()
    assert len(index) == 1


def test_7_a_batch_returns_every_touched_component_once(make: Any) -> None:
    index = ComponentIndex()
    touched = index.add([make("a", 0, anon="A"), make("b", 1, anon="B"), make("a2", 2, anon="A")])
    assert len(touched) == 2
    assert sorted(len(index.events_of(c)) for c in touched) == [1, 2]


def test_7_alias_previous_id_joins_keys_of_any_type_with_that_value(make: Any) -> None:
    index = ComponentIndex()
    [crm] = index.add([make("c", 0, extra_keys={"crm_id": "X1"}, channel="call")])
    [alias] = index.add([make("al", 5, "Aliased", user="U", previous_id="X1")])
    assert alias == index.find(crm)
    # a key with that value seen only later joins too
    [later] = index.add([make("an", 9, anon="X1")])
    assert later == alias and _ids(index, later) == {"c", "al", "an"}


def test_7_refused_links_still_share_a_component(make: Any) -> None:
    index = ComponentIndex()
    events = [make("a", 0, anon="dev", user="alice"), make("b", 1, anon="dev", user="bob")]
    [component] = index.add(events)
    assert len(derive(index.events_of(component), CoreConfig())) == 2


def _stream(batches: list[list[Event]], config: CoreConfig) -> list[CustomerFacts]:
    """What the processor does: re-derive touched components, drop their stale customers."""
    index = ComponentIndex()
    current: dict[str, CustomerFacts] = {}
    for batch in batches:
        for component in index.add(batch):
            for stale in index.customers_of(component):
                current.pop(stale)
            facts = derive(index.events_of(component), config)
            current.update((f.customer.customer_id, f) for f in facts)
            index.set_customers(component, [f.customer.customer_id for f in facts])
    return [current[k] for k in sorted(current)]


def test_7_streaming_a_merge_equals_the_batch_result(make: Any) -> None:
    config = CoreConfig()
    events = [
        make("w1", 0, "Product Viewed", anon="A"),
        make("s1", 100, "Order Completed", email="e@x.org", channel="store"),
        make("w2", 200, "Order Completed", anon="A", campaign=("news", "email", "may")),
        make("i1", 300, "Identified", anon="A", email="e@x.org", user="U", traits={"plan": "pro"}),
        make("x", 50, "Page Viewed", anon="B"),
    ]
    one_by_one = _stream([[e] for e in reversed(events)], config)
    assert one_by_one == derive(events, config)
    assert len(one_by_one) == 2

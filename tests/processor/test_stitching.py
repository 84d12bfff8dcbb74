"""SPEC 2: identity stitching, customer ids and traits."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from journey.facts import CustomerFacts
from journey.schema import Event
from processor.derive import CoreConfig, derive
from processor.stitching import stitch

CONFIG = CoreConfig()


def _groups(facts: list[CustomerFacts]) -> set[frozenset[str]]:
    """The customers as sets of their event ids."""
    return {frozenset(row.event_id for row in f.event_stages) for f in facts}


def _keys(f: CustomerFacts) -> set[tuple[str, str]]:
    return {(row.type, row.value) for row in f.identities}


# (case, events as (id, at, kwargs), expected customers as sets of event ids)
CASES: list[tuple[str, list[tuple[str, float, dict[str, Any]]], set[frozenset[str]]]] = [
    (
        "shared device: one anonymous_id, two user_ids -> second link refused",
        [
            ("a", 0, {"anon": "dev1", "user": "alice"}),
            ("b", 10, {"anon": "dev1", "user": "bob"}),
            ("c", 20, {"anon": "dev1"}),
        ],
        {frozenset({"a", "c"}), frozenset({"b"})},
    ),
    (
        "email links a web visitor and a store customer",
        [
            ("w", 0, {"anon": "cookie1", "email": "ann@x.org"}),
            (
                "s",
                99,
                {"email": "ann@x.org", "extra_keys": {"loyalty_card": "L-1"}, "channel": "store"},
            ),
            ("s2", 500, {"extra_keys": {"loyalty_card": "L-1"}, "channel": "store"}),
        ],
        {frozenset({"w", "s", "s2"})},
    ),
    (
        "alias chain: two anonymous ids aliased to one user, then their other keys",
        [
            ("p1", 0, {"anon": "A1"}),
            ("p2", 5, {"anon": "A2", "phone": "15550001"}),
            ("al1", 10, {"event": "Aliased", "user": "U", "previous_id": "A1"}),
            ("al2", 20, {"event": "Aliased", "user": "U", "previous_id": "A2"}),
            ("ph", 30, {"phone": "15550001", "channel": "call"}),
        ],
        {frozenset({"p1", "p2", "al1", "al2", "ph"})},
    ),
    (
        "alias previousId that is another user_id: joining two user_ids is refused",
        [
            ("u1", 0, {"user": "U1"}),
            ("u2", 1, {"event": "Aliased", "user": "U2", "previous_id": "U1"}),
        ],
        {frozenset({"u1"}), frozenset({"u2"})},
    ),
    (
        "alias previousId takes the type of an existing key (crm_id) even if seen later",
        [
            ("al", 0, {"event": "Aliased", "user": "U", "previous_id": "C-9"}),
            ("crm", 50, {"extra_keys": {"crm_id": "C-9"}, "channel": "call"}),
        ],
        {frozenset({"al", "crm"})},
    ),
    (
        "alias previousId carried by several key types takes the highest-priority one",
        [
            ("an", 0, {"anon": "Z"}),
            ("crm", 10, {"extra_keys": {"crm_id": "Z"}, "channel": "call"}),
            ("al", 20, {"event": "Aliased", "user": "U", "previous_id": "Z"}),
        ],
        {frozenset({"an"}), frozenset({"crm", "al"})},
    ),
    (
        "alias previousId with no existing key becomes an anonymous_id",
        [
            ("al", 0, {"event": "Aliased", "user": "U", "previous_id": "X"}),
            ("later", 9, {"anon": "X"}),
        ],
        {frozenset({"al", "later"})},
    ),
    (
        "event belongs to the final customer of its highest-priority key",
        [
            ("e1", 0, {"email": "e@x.org", "anon": "A"}),
            ("e2", 1, {"user": "U", "anon": "A"}),
            ("e3", 2, {"user": "V", "email": "e@x.org"}),
        ],  # email's customer holds U -> refused
        {frozenset({"e1", "e2"}), frozenset({"e3"})},
    ),
    (
        "odd key values (blocked at ingest) do not crash the core",
        [
            ("o1", 0, {"anon": "0"}),
            ("o2", 1, {"anon": "null", "extra_keys": {"x": "-1"}}),
            ("o3", 2, {"anon": "\u00e9\u00e9 " * 30}),
        ],
        {frozenset({"o1"}), frozenset({"o2"}), frozenset({"o3"})},
    ),
]


@pytest.mark.parametrize(("case", "events", "expected"), CASES, ids=[c[0] for c in CASES])
def test_2_2_stitching_cases(
    make: Any,
    case: str,
    events: list[tuple[str, float, dict[str, Any]]],
    expected: set[frozenset[str]],
) -> None:
    built = [make(eid, at, **kw) for eid, at, kw in events]
    assert _groups(derive(built, CONFIG)) == expected
    assert _groups(derive(reversed(built), CONFIG)) == expected


def test_2_2_a_customer_holds_at_most_one_user_id(make: Any) -> None:
    events = [
        make("a", 0, anon="d", user="alice"),
        make("b", 1, anon="d", user="bob"),
        make("c", 2, email="x@y.z", user="bob"),
        make("d", 3, email="x@y.z", anon="d"),
    ]
    result = stitch(sorted(events, key=Event.order_key))
    assert sorted(c.user_id or "" for c in result.customers) == ["alice", "bob"]
    assert result.refused_links == 2  # b's anonymous_id and d's anonymous_id
    for f in derive(events, CONFIG):
        assert len({t for t in _keys(f) if t[0] == "user_id"}) == 1


def test_2_2_a_user_id_survives_joining_a_larger_keyless_customer(make: Any) -> None:
    # Union by size keeps the larger root: the user_id of the smaller one must move to it, or a
    # second user_id could join later (a customer with two user_ids).
    events = [
        make("u", 0, user="alice", anon="z"),
        *(make(f"b{i}", 1 + i, phone="15550001", anon=f"b{i}") for i in range(3)),
        make("j", 10, phone="15550001", anon="z"),  # joins alice's {alice, z} to the phone's 4
        make("k", 20, user="bob", phone="15550001"),  # refused: the phone's customer is alice's
    ]
    result = stitch(sorted(events, key=Event.order_key))
    assert sorted(c.user_id or "" for c in result.customers) == ["alice", "bob"]
    assert [(e.event_id, k) for e, k, _, _ in result.refusals] == [("k", ("phone", "15550001"))]
    for f in derive(events, CONFIG):
        assert len({t for t in _keys(f) if t[0] == "user_id"}) == 1


def test_2_2_customer_id_from_user_id_is_stable(make: Any) -> None:
    anon_only = derive([make("a", 0, anon="A")], CONFIG)
    expected_k = "k_" + hashlib.sha256(b"anonymous_id:A").hexdigest()[:20]
    assert [f.customer.customer_id for f in anon_only] == [expected_k]
    with_user = derive([make("a", 0, anon="A"), make("b", 5, anon="A", user="U7")], CONFIG)
    expected_u = "u_" + hashlib.sha256(b"U7").hexdigest()[:20]
    assert [f.customer.customer_id for f in with_user] == [expected_u]
    more = derive(
        [
            make("a", 0, anon="A"),
            make("b", 5, anon="A", user="U7"),
            make("c", -100, email="q@q.q", anon="A"),
        ],
        CONFIG,
    )
    assert [f.customer.customer_id for f in more] == [expected_u]


def test_2_2_customer_id_without_user_id_uses_earliest_events_primary_key(make: Any) -> None:
    events = [make("b", 5, anon="A"), make("a", 5, email="m@x.org", anon="A")]  # tie: a first
    [facts] = derive(events, CONFIG)
    assert facts.customer.customer_id == "k_" + hashlib.sha256(b"email:m@x.org").hexdigest()[:20]
    assert facts.customer.user_id is None


def test_2_1_identities_list_every_key_with_first_seen(make: Any) -> None:
    events = [
        make("a", 0, anon="A"),
        make("b", 60, anon="A", email="e@x.org"),
        make("c", 120, "Aliased", user="U", previous_id="A"),
    ]
    [facts] = derive(events, CONFIG)
    got = [
        (r.type, r.value, (r.first_seen - events[0].timestamp).total_seconds())
        for r in facts.identities
    ]
    assert got == [("user_id", "U", 120.0), ("email", "e@x.org", 60.0), ("anonymous_id", "A", 0.0)]
    assert facts.customer.event_count == 3


def test_2_3_traits_union_latest_event_wins(make: Any) -> None:
    events = [
        make("i1", 0, "Identified", user="U", traits={"plan": "free", "city": "Oslo"}),
        make("t1", 10, "Product Viewed", user="U", context={"traits": {"plan": "pro"}}),
        make("g1", 20, "Grouped", user="U", traits={"plan": "enterprise", "industry": "retail"}),
        make("i0", -5, "Identified", user="U", traits={"city": "Rome", "age": 40}),
        make(
            "i2",
            30,
            "Identified",
            user="U",
            traits={"vip": True},
            context={"traits": {"vip": False}},
        ),
    ]
    [facts] = derive(events, CONFIG)
    assert facts.customer.traits == {"plan": "pro", "city": "Oslo", "age": 40, "vip": True}

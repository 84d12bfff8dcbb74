"""SPEC 7 for the incremental core: start + extend over a customer's events, in order, gives
exactly derive()'s rows, and so does resume at any split point followed by extend.

The table cases name the SPEC clause each tricky part comes from; the property tests draw
single-customer histories with several channels, campaigns, gaps around the timeout, surveys,
identify traits and keys, under three models (one with nth and without `any`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journey.facts import CustomerFacts
from journey.schema import Event
from processor import ids
from processor.derive import CoreConfig, derive, unique_sorted
from processor.incremental import (
    Delta,
    NotIncrementalError,
    Running,
    decode,
    encode,
    extend,
    resume,
    start,
)
from processor.stages.model import preset, validate_model

# No `any`: the stage is NO_STAGE until a web product view; nth on two rules; where conditions.
LOYALTY = validate_model(
    {
        "name": "loyalty",
        "conversion_stage": "buyer",
        "stages": [
            {"name": "browser", "rules": [{"event": ["Product Viewed"], "channel": ["web"]}]},
            {
                "name": "buyer",
                "rules": [{"event": "Order Completed", "where": {"total": {"gte": 50}}}],
            },
            {
                "name": "loyal",
                "rules": [
                    {"event": "Order Completed", "nth": 3},
                    {"event": "Survey Responded", "nth": 2, "where": {"score": {"gte": 5}}},
                ],
            },
        ],
    },
    "loyalty.toml",
)
CONFIG = CoreConfig(models=(preset("default"), preset("lifecycle"), LOYALTY))
TABLES = ("identities", "sessions", "stage_entries", "event_stages", "transitions", "surveys")
SORT_KEYS: dict[str, Callable[[Any], tuple[Any, ...]]] = {
    "identities": lambda r: (r.type, r.value),
    "sessions": lambda r: (r.session_id,),
    "stage_entries": lambda r: (r.model, r.stage_index),
    "event_stages": lambda r: (r.event_id, r.model),
    "transitions": lambda r: (r.model, r.from_stage, r.to_stage),
    "surveys": lambda r: (r.event_id, r.model),
}
Spec = list[tuple[str, float, dict[str, Any]]]


def _ids(events: Sequence[Event]) -> tuple[str, str | None]:
    user = next((k.value for e in events for k in e.keys if k.type == "user_id"), None)
    primary = events[0].keys[0]
    return ids.customer_id(user, primary.type, primary.value), user


def _new_keys(event: Event, seen: set[tuple[str, str]]) -> list[tuple[str, str]]:
    new = [(k.type, k.value) for k in event.keys if (k.type, k.value) not in seen]
    seen.update(new)
    return new


def _fold(
    run: Running, events: Sequence[Event], seen: set[tuple[str, str]], config: CoreConfig
) -> Delta:
    total: Delta | None = None
    for event in events:
        delta = extend(run, event, _new_keys(event, seen), config)
        if total is None:
            total = delta
        else:
            total.merge(delta)
    assert total is not None
    return total


def _incremental(events: Sequence[Event], config: CoreConfig = CONFIG) -> CustomerFacts:
    ordered = unique_sorted(events)
    cid, user = _ids(ordered)
    return _fold(start(cid, user, config), ordered, set(), config).facts()


def _assert_same(got: CustomerFacts, want: CustomerFacts) -> None:
    assert got.customer == want.customer
    for table in TABLES:
        key = SORT_KEYS[table]
        assert sorted(getattr(got, table), key=key) == sorted(getattr(want, table), key=key), table
    assert got.transitions == want.transitions  # already in derive's order: model, from, to


def _derived(events: Sequence[Event], config: CoreConfig = CONFIG) -> CustomerFacts:
    [facts] = derive(events, config)
    return facts


G = ("google", "cpc", "spring")
F = ("facebook", "social", "spring")
CASES: list[tuple[str, Spec]] = [
    ("3_gap_of_exactly_the_timeout_does_not_split", [("a", 0, {}), ("b", 1800, {})]),
    ("3_gap_of_the_timeout_plus_a_microsecond_splits", [("a", 0, {}), ("b", 1800.000001, {})]),
    (
        "3_the_gap_is_from_the_previous_event_not_the_session_start",
        [("a", 0, {}), ("b", 1000, {}), ("c", 2000, {}), ("d", 3800, {}), ("e", 5600.5, {})],
    ),
    (
        "3_campaign_change_splits",
        [("a", 0, {"campaign": G}), ("b", 60, {}), ("c", 120, {"campaign": F})],
    ),
    (
        "3_campaign_inside_an_uncampaigned_session_splits",
        [("a", 0, {}), ("b", 60, {"campaign": G}), ("c", 70, {}), ("d", 80, {"campaign": G})],
    ),
    (
        "3_single_touches_do_not_break_the_web_session",
        [
            ("a", 0, {"page_url": "https://x.org/a"}),
            ("b", 30, {"event": "Email Clicked", "channel": "email"}),
            ("c", 60, {"channel": "app", "event": "Screen Viewed"}),
            ("d", 90, {"event": "Call Completed", "channel": "call"}),
        ],
    ),
    (
        "3_landing_page_is_the_first_page_url",
        [
            ("a", 0, {"event": "Product Viewed"}),
            ("b", 10, {"page_url": None}),
            ("c", 20, {"page_url": "https://x.org/l"}),
            ("d", 30, {"page_url": "https://x.org/m"}),
        ],
    ),
    (
        "4_1_nth_counts_only_events_matching_the_other_conditions",
        [
            ("a", 0, {"event": "Product Viewed"}),
            ("o1", 10, {"event": "Order Completed", "properties": {"total": 10}}),
            ("o2", 20, {"event": "Order Completed", "properties": {"total": 60}}),
            ("o3", 30, {"event": "Order Completed", "channel": "store"}),
            ("s1", 40, {"event": "Survey Responded", "properties": {"survey": "nps", "score": 3}}),
            ("s2", 50, {"event": "Survey Responded", "properties": {"survey": "nps", "score": 9}}),
            ("s3", 60, {"event": "Survey Responded", "properties": {"survey": "csat", "score": 5}}),
        ],
    ),
    (
        "4_2_purchase_without_consideration_infers_it",
        [("v", 0, {}), ("o", 60, {"event": "Order Completed", "channel": "store"})],
    ),
    (
        "4_2_no_stage_before_the_first_stage_without_any",
        [("a", 0, {}), ("b", 10, {"event": "Product Viewed", "channel": "app"}), ("c", 20, {})],
    ),
    (
        "4_2_transitions_count_forward_and_backward",
        [
            ("a", 0, {"event": "Product Viewed"}),
            ("b", 10, {"event": "Order Completed", "properties": {"total": 99}}),
            ("c", 20, {"event": "Product Viewed"}),
            ("d", 30, {"event": "Order Completed"}),
            ("e", 40, {"event": "Product Viewed"}),
            ("f", 50, {"event": "Review Submitted"}),
        ],
    ),
    (
        "2_3_traits_latest_wins_identify_over_context",
        [
            ("a", 0, {"context": {"traits": {"plan": "free", "city": "Oslo"}}}),
            (
                "b",
                10,
                {
                    "event": "Identified",
                    "traits": {"plan": "pro"},
                    "context": {"traits": {"plan": "ctx", "age": 3}},
                },
            ),
            ("c", 20, {"event": "Grouped", "traits": {"plan": "group"}}),
            ("d", 30, {"context": {"traits": {"city": "Bergen"}}}),
        ],
    ),
    (
        "2_2_equal_times_order_by_event_id",
        [("b", 5, {"event": "Order Completed"}), ("a", 5, {}), ("c", 5, {"channel": "sms"})],
    ),
]


@pytest.mark.parametrize(("name", "spec"), CASES, ids=[c[0] for c in CASES])
def test_fold_of_extend_equals_derive(make: Any, name: str, spec: Spec) -> None:
    events = [make(eid, at, **{"anon": "A", **kw}) for eid, at, kw in spec]
    _assert_same(_incremental(events), _derived(events))


def test_4_1_two_nth_counters_of_one_model_count_apart(make: Any) -> None:
    survey = {"event": "Survey Responded", "properties": {"survey": "nps", "score": 9}}
    spec: Spec = [
        ("s1", 0, survey),
        ("o1", 10, {"event": "Order Completed", "properties": {"total": 60}}),
        ("o2", 20, {"event": "Order Completed"}),
        ("s2", 30, survey),
    ]
    events = [make(eid, at, **{"anon": "A", **kw}) for eid, at, kw in spec]
    got = _incremental(events)
    _assert_same(got, _derived(events))
    rows = [(r.event_id, r.own_stage, r.stage_at) for r in got.event_stages if r.model == "loyalty"]
    assert rows == [
        ("s1", None, ""),
        ("o1", "buyer", "buyer"),
        ("o2", None, "buyer"),  # the second order of three: not yet loyal
        ("s2", "loyal", "loyal"),  # the second good survey
    ]
    entries = [(e.stage, e.event_id, e.inferred) for e in got.stage_entries if e.model == "loyalty"]
    assert entries == [("browser", "o1", True), ("buyer", "o1", False), ("loyal", "s2", False)]


def test_2_1_new_keys_become_identity_rows_at_their_first_event(make: Any) -> None:
    events = [
        make("a", 0, anon="A"),
        make("b", 60, anon="A", email="p@x.org"),
        make("c", 120, user="U", anon="A", email="p@x.org", extra_keys={"crm_id": "7"}),
    ]
    got = _incremental(events)
    _assert_same(got, _derived(events))
    assert {i.type: i.first_seen for i in got.identities} == {
        "anonymous_id": events[0].timestamp,
        "email": events[1].timestamp,
        "user_id": events[2].timestamp,
        "crm_id": events[2].timestamp,
    }


def test_a_delta_holds_only_what_the_event_changed(make: Any) -> None:
    config = CoreConfig()
    run = start("c1", None, config)
    extend(run, make("a", 0, anon="A"), [("anonymous_id", "A")], config)
    delta = extend(run, make("b", 60, "Email Clicked", channel="email", anon="A"), [], config)
    change = delta.facts()
    assert change.identities == [] and len(change.event_stages) == 1
    [touch] = change.sessions
    assert touch.channel == "email" and touch.event_count == 1
    assert [e.stage for e in change.stage_entries] == ["consideration"]
    assert change.customer.event_count == 2
    assert [t.transitions for t in change.transitions] == []  # awareness had no own stage


def test_an_earlier_event_or_another_user_id_is_refused(make: Any) -> None:
    config = CoreConfig()
    run = start("c1", "U", config)
    extend(run, make("b", 60, anon="A"), [("anonymous_id", "A")], config)
    with pytest.raises(NotIncrementalError):
        extend(run, make("a", 0, anon="A"), [], config)
    with pytest.raises(NotIncrementalError):
        extend(run, make("c", 70, user="V", anon="A"), [("user_id", "V")], config)


# One raw event: (keys, name, channel, slot, jitter, campaign, score, traits)
NAMES = [
    "Page Viewed",
    "Page Viewed",
    "Screen Viewed",
    "Product Viewed",
    "Cart Viewed",
    "Checkout Started",
    "Order Completed",
    "Order Completed",
    "Review Submitted",
    "Survey Responded",
    "Identified",
    "Grouped",
    "Call Completed",
    "Product Used",
    "Support Ticket Opened",
]
CHANNELS = ["web", "web", "app", "email", "call", "store", "sms"]
CAMPAIGNS: list[tuple[str | None, str | None, str | None] | None] = [
    None,
    None,
    ("google", "cpc", "a"),
    ("news", "email", "b"),
    (None, None, "c"),
]
Raw = tuple[str, str, str, int, float, int, int, int]
raw_event = st.tuples(
    st.sampled_from(["", "", "", "u", "e", "p", "l", "ue"]),
    st.sampled_from(NAMES),
    st.sampled_from(CHANNELS),
    st.integers(0, 8),
    # Slots are 1000 s apart: with these jitters consecutive gaps fall on, just under and just
    # over the 1800 s timeout, and chains of short gaps outlast it.
    st.sampled_from([0.0, 0.0, 1.0, -1.0, 0.000001, 800.0, 800.000001, 799.999999]),
    st.integers(0, len(CAMPAIGNS) - 1),
    st.integers(0, 10),
    st.integers(0, 3),
)


def _build(make: Any, index: int, raw: Raw) -> Event:
    keys, name, channel, slot, jitter, campaign, score, trait = raw
    kw: dict[str, Any] = {
        "anon": "dev-1",  # every event shares it: one customer
        "user": "u1" if "u" in keys else None,
        "email": "p@x.org" if "e" in keys else None,
        "phone": "5551" if "p" in keys else None,
        "extra_keys": {"loyalty_card": "L1"} if "l" in keys else None,
        "properties": {"total": score * 10, "survey": ["nps", "csat"][score % 2], "score": score},
    }
    if name == "Page Viewed":
        kw["page_url"] = [None, "https://x.org/a", "https://x.org/b"][slot % 3]
    if name in ("Identified", "Grouped"):
        kw["traits"] = {"plan": ["free", "pro"][trait % 2], f"t{trait}": slot}
    if trait:
        kw["context"] = {"traits": {"plan": f"ctx{trait}", "c": index % 3}}
    built: Event = make(
        f"e{index:03d}",
        slot * 1000 + jitter,
        name,
        channel=channel,
        campaign=CAMPAIGNS[campaign],
        **kw,
    )
    return built


histories = st.lists(raw_event, min_size=1, max_size=30)
CHECKS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@CHECKS
@given(raws=histories, split_on_campaign=st.booleans())
def test_7_fold_of_extend_equals_derive(
    make: Any, raws: list[Raw], split_on_campaign: bool
) -> None:
    config = CoreConfig(split_on_campaign_change=split_on_campaign, models=CONFIG.models)
    events = [_build(make, i, raw) for i, raw in enumerate(raws)]
    _assert_same(_incremental(events, config), _derived(events, config))


def _with_rows_of(base: CustomerFacts | None, delta: Delta) -> CustomerFacts:
    """What the warehouse holds after applying a delta as its contract says to."""
    change = delta.facts()
    if base is None:
        return change
    sessions = {s.session_id: s for s in base.sessions}
    sessions.update((s.session_id, s) for s in change.sessions)
    return CustomerFacts(
        change.customer,
        base.identities + change.identities,
        list(sessions.values()),
        base.stage_entries + change.stage_entries,
        base.event_stages + change.event_stages,
        change.transitions,
        base.surveys + change.surveys,
    )


def _one_user_from_the_start(raws: list[Raw]) -> list[Raw]:
    # A customer gaining its user_id later changes its customer_id: that is a re-derivation.
    if not any("u" in raw[0] for raw in raws):
        return raws
    first = min(range(len(raws)), key=lambda i: (raws[i][3] * 1000 + raws[i][4], i))
    return [("u" + raw[0], *raw[1:]) if i == first else raw for i, raw in enumerate(raws)]


@CHECKS
@given(raws=histories, data=st.data())
def test_7_resume_at_any_split_then_extend_equals_derive(
    make: Any, raws: list[Raw], data: st.DataObject
) -> None:
    raws = _one_user_from_the_start(raws)
    events = unique_sorted(_build(make, i, raw) for i, raw in enumerate(raws))
    k = data.draw(st.integers(0, len(events) - 1), label="split")
    cid, user = _ids(events)
    run = resume(cid, user, events[:k], CONFIG)
    seen = {(key.type, key.value) for e in events[:k] for key in e.keys}
    base = _derived(events[:k]) if k else None
    _assert_same(_with_rows_of(base, _fold(run, events[k:], seen, CONFIG)), _derived(events))


@CHECKS
@given(raws=histories, data=st.data())
def test_7_encode_decode_continues_identically(
    make: Any, raws: list[Raw], data: st.DataObject
) -> None:
    events = unique_sorted(_build(make, i, raw) for i, raw in enumerate(raws))
    k = data.draw(st.integers(0, len(events)), label="split")
    cid, user = _ids(events)
    run = resume(cid, user, events[:k], CONFIG)
    copy = decode(encode(run))
    assert copy == run
    seen = {(key.type, key.value) for e in events[:k] for key in e.keys}
    if k < len(events):
        after_copy = _fold(copy, events[k:], set(seen), CONFIG).facts()
        assert after_copy == _fold(run, events[k:], seen, CONFIG).facts()
    assert copy == run == resume(cid, user, events, CONFIG)

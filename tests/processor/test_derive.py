"""derive(): every derived row of a realistic multi-channel customer, and its invariants."""

from __future__ import annotations

import hashlib
import random
from datetime import timedelta
from typing import Any

import pytest

from journey.errors import ConfigError
from journey.facts import CustomerRow, IdentityRow, StageEntryRow, TransitionRow
from journey.schema import Event
from processor.derive import CoreConfig, derive
from processor.stages.model import preset


def _h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _journey(make: Any) -> list[Event]:
    ad = ("google", "cpc", "spring")
    return [
        make("e1", 0, anon="ck", campaign=ad, page_url="https://s.example/?utm_source=google"),
        make("e2", 30, "Product Viewed", anon="ck"),
        make("e3", 4000, "Email Clicked", email="ann@x.org", channel="email"),
        make("e4", 4100, anon="ck", email="ann@x.org", page_url="https://s.example/p/9"),
        make("e5", 4200, "Identified", anon="ck", user="u-1", traits={"plan": "pro"}),
        make(
            "e6",
            9000,
            "Order Completed",
            user="u-1",
            extra_keys={"loyalty_card": "L7"},
            channel="store",
        ),
        make(
            "e7",
            9100,
            "Survey Responded",
            user="u-1",
            channel="email",
            properties={"survey": "nps", "score": 10},
        ),
    ]


def test_2_3_4_a_full_journey_is_derived_field_by_field(make: Any) -> None:
    events = _journey(make)
    [f] = derive(events, CoreConfig())
    t = {e.event_id: e.timestamp for e in events}
    cid = "u_" + _h("u-1")
    assert f.customer == CustomerRow(
        cid, "u-1", t["e1"], t["e7"], 7, "web", "google", "cpc", {"plan": "pro"}
    )
    assert f.identities == [
        IdentityRow(cid, "user_id", "u-1", t["e5"]),
        IdentityRow(cid, "email", "ann@x.org", t["e3"]),
        IdentityRow(cid, "loyalty_card", "L7", t["e6"]),
        IdentityRow(cid, "anonymous_id", "ck", t["e1"]),
    ]
    sessions = [
        (s.session_id, s.channel, s.event_count, s.source, s.campaign, s.converted_models)
        for s in f.sessions
    ]
    assert sessions == [
        ("s_" + _h(cid + "\x00e1"), "web", 2, "google", "spring", ()),
        ("s_" + _h(cid + "\x00e3"), "email", 1, "email", None, ()),
        ("s_" + _h(cid + "\x00e4"), "web", 2, "(direct)", None, ()),
        ("s_" + _h(cid + "\x00e6"), "store", 1, "store", None, ("default",)),
        ("s_" + _h(cid + "\x00e7"), "email", 1, "email", None, ()),
    ]
    assert f.sessions[0].landing_page == "https://s.example/?utm_source=google"
    assert f.stage_entries == [
        StageEntryRow(cid, "default", "awareness", 0, t["e1"], False, "e1"),
        StageEntryRow(cid, "default", "consideration", 1, t["e2"], False, "e2"),
        StageEntryRow(cid, "default", "decision", 2, t["e6"], False, "e6"),
        StageEntryRow(cid, "default", "retention", 3, t["e7"], True, "e7"),
        StageEntryRow(cid, "default", "advocacy", 4, t["e7"], False, "e7"),
    ]
    assert [
        (r.event_id, r.session_id[:2], r.own_stage, r.stage_at, r.stage_at_index)
        for r in f.event_stages
    ] == [
        ("e1", "s_", None, "awareness", 0),
        ("e2", "s_", "consideration", "consideration", 1),
        ("e3", "s_", "consideration", "consideration", 1),
        ("e4", "s_", None, "consideration", 1),
        ("e5", "s_", None, "consideration", 1),
        ("e6", "s_", "decision", "decision", 2),
        ("e7", "s_", "advocacy", "advocacy", 4),
    ]
    session_ids = {s.session_id for s in f.sessions}
    assert {r.session_id for r in f.event_stages} == session_ids
    assert f.transitions == [
        TransitionRow(cid, "default", "consideration", "decision", 1),
        TransitionRow(cid, "default", "decision", "advocacy", 1),
    ]
    assert [(s.event_id, s.survey, s.score, s.stage_at) for s in f.surveys] == [
        ("e7", "nps", 10.0, "advocacy")
    ]


def test_7_same_events_in_any_order_with_duplicates_give_the_same_facts(make: Any) -> None:
    events = [*_journey(make), make("z1", 20, anon="other"), make("z2", 20, anon="other")]
    expected = derive(events, CoreConfig())
    rng = random.Random(7)
    for _ in range(5):
        shuffled = events + rng.sample(events, 3)
        rng.shuffle(shuffled)
        assert derive(shuffled, CoreConfig()) == expected
    assert [f.customer.customer_id for f in expected] == sorted(
        f.customer.customer_id for f in expected
    )


def test_2_2_merging_recomputes_facts_over_the_merged_customer(make: Any) -> None:
    web = [make("w", 0, "Product Viewed", anon="ck")]
    store = [make("s", 60, "Order Completed", email="e@x.org", channel="store")]
    assert len(derive(web + store, CoreConfig())) == 2
    link = [make("l", 120, anon="ck", email="e@x.org")]
    [f] = derive(web + store + link, CoreConfig())
    assert [(e.stage, e.inferred) for e in f.stage_entries] == [
        ("awareness", False),
        ("consideration", False),
        ("decision", False),
    ]
    assert f.customer.first_seen == web[0].timestamp
    assert f.customer.last_seen == web[0].timestamp + timedelta(seconds=120)


def test_derive_of_nothing_is_nothing() -> None:
    assert derive([], CoreConfig()) == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"session_timeout_s": 0},
        {"models": (preset("default"), preset("default"))},
    ],
)
def test_core_config_rejects_bad_settings(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        CoreConfig(**kwargs)

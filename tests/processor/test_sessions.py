"""SPEC 3: sessions."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest

from journey.facts import SessionRow
from processor.derive import CoreConfig, derive

G = ("google", "cpc", "spring")
F = ("facebook", "social", "spring")
Spec = list[tuple[str, float, dict[str, Any]]]


def _sessions(make: Any, events: Spec, **config: Any) -> list[SessionRow]:
    built = [make(eid, at, **{"anon": "A", **kw}) for eid, at, kw in events]
    [facts] = derive(built, CoreConfig(**config))
    return facts.sessions


def _split(make: Any, events: Spec, **config: Any) -> list[list[str]]:
    """Each session's event ids, sessions by start."""
    built = [make(eid, at, **{"anon": "A", **kw}) for eid, at, kw in events]
    [facts] = derive(built, CoreConfig(**config))
    by_session: dict[str, list[str]] = {s.session_id: [] for s in facts.sessions}
    for row in facts.event_stages:
        by_session[row.session_id].append(row.event_id)
    return list(by_session.values())


CASES: list[tuple[str, Spec, list[list[str]]]] = [
    ("gap of exactly the timeout does not split", [("a", 0, {}), ("b", 1800, {})], [["a", "b"]]),
    (
        "gap of the timeout plus a microsecond splits",
        [("a", 0, {}), ("b", 1800.000001, {})],
        [["a"], ["b"]],
    ),
    (
        "campaign change inside 30 minutes splits",
        [("a", 0, {"campaign": G}), ("b", 60, {}), ("c", 120, {"campaign": F})],
        [["a", "b"], ["c"]],
    ),
    (
        "the same campaign again does not split",
        [("a", 0, {"campaign": G}), ("b", 60, {"campaign": G})],
        [["a", "b"]],
    ),
    (
        "a campaign inside an uncampaigned session differs from none: splits",
        [("a", 0, {}), ("b", 60, {"campaign": G}), ("c", 70, {})],
        [["a"], ["b", "c"]],
    ),
    (
        "a campaign differing only in name splits",
        [("a", 0, {"campaign": G}), ("b", 60, {"campaign": ("google", "cpc", "autumn")})],
        [["a"], ["b"]],
    ),
    (
        "web and app form one stream",
        [("a", 0, {}), ("b", 100, {"channel": "app", "event": "Screen Viewed"})],
        [["a", "b"]],
    ),
    (
        "other channels are single touches and do not break a web session",
        [
            ("a", 0, {}),
            ("m", 100, {"channel": "email", "event": "Email Clicked"}),
            ("s", 150, {"channel": "store", "event": "Store Visited"}),
            ("b", 200, {}),
        ],
        [["a", "b"], ["m"], ["s"]],
    ),
    (
        "no split at midnight",
        [("a", 14 * 3600 + 59 * 60, {}), ("b", 15 * 3600 + 60, {})],
        [["a", "b"]],
    ),
    (
        "gaps are measured from the previous event, not the session start",
        [("a", 0, {}), ("b", 1700, {}), ("c", 3400, {}), ("d", 5201, {})],
        [["a", "b", "c"], ["d"]],
    ),
]


@pytest.mark.parametrize(("case", "events", "expected"), CASES, ids=[c[0] for c in CASES])
def test_3_session_boundaries(
    make: Any, case: str, events: Spec, expected: list[list[str]]
) -> None:
    assert _split(make, events) == expected


def test_3_campaign_split_can_be_turned_off(make: Any) -> None:
    events: Spec = [("a", 0, {}), ("b", 60, {"campaign": G}), ("c", 120, {"campaign": F})]
    assert _split(make, events, split_on_campaign_change=False) == [["a", "b", "c"]]
    [session] = _sessions(make, events, split_on_campaign_change=False)
    # source, medium, campaign of its first event that has one
    assert (session.source, session.medium, session.campaign) == G


def test_3_session_timeout_is_configurable(make: Any) -> None:
    events: Spec = [("a", 0, {}), ("b", 600, {})]
    assert _split(make, events, session_timeout_s=600) == [["a", "b"]]
    assert _split(make, events, session_timeout_s=599) == [["a"], ["b"]]


def test_3_session_attributes(make: Any) -> None:
    events: Spec = [
        ("a", 0, {"event": "Product Viewed", "page_url": "https://shop.example/track"}),
        ("b", 10, {"page_url": "https://shop.example/"}),
        ("c", 20, {"page_url": "https://shop.example/p/1"}),
        ("d", 30, {"channel": "app", "event": "Screen Viewed"}),
        ("e", 95.5, {"event": "Order Completed"}),
    ]
    [session] = _sessions(make, events)
    customer = "k_" + hashlib.sha256(b"anonymous_id:A").hexdigest()[:20]
    assert session == SessionRow(
        session_id="s_" + hashlib.sha256(f"{customer}\x00a".encode()).hexdigest()[:20],
        customer_id=customer,
        channel="web",
        start=session.start,
        end=session.start + timedelta(seconds=95.5),
        duration_s=95.5,
        event_count=5,
        page_views=3,
        landing_page="https://shop.example/",
        source="(direct)",
        medium="(none)",
        campaign=None,
        converted_models=("default",),
    )


def test_3_single_touch_session_and_converted_flag(make: Any) -> None:
    events: Spec = [
        ("v", 0, {}),
        ("o", 100, {"channel": "store", "event": "Order Completed"}),
        ("o2", 200, {"channel": "store", "event": "Order Completed"}),
    ]
    sessions = _sessions(make, events)
    assert [
        (s.channel, s.event_count, s.duration_s, s.source, s.converted_models) for s in sessions
    ] == [
        ("web", 1, 0.0, "(direct)", ()),
        ("store", 1, 0.0, "store", ("default",)),
        ("store", 1, 0.0, "store", ()),
    ]
    assert sessions[1].page_views == 0 and sessions[1].landing_page is None

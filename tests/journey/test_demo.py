"""The demo dataset: realistic Segment messages whose journeys fill every default stage.

The checks here re-derive customers and stages from the messages with a deliberately simple,
independent reading of SPEC 2 and 4.1, so they do not depend on the processor being right.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from journey.demo import PERSONAS, batches, generate
from journey.errors import ConfigError

Message = dict[str, Any]
Key = tuple[str, str]

# SPEC 4.1, the `default` model's event names per stage.
CONSIDERATION = {"Product Viewed", "Product List Viewed", "Products Searched", "Pricing Viewed",
                 "Demo Requested", "Signed Up", "Product Added", "Cart Viewed", "Email Clicked",
                 "Call Completed", "Store Visited"}
DECISION = {"Checkout Started", "Order Completed", "Subscription Started", "Quote Accepted"}
RETENTION = {"Order Completed", "Subscription Renewed", "Product Used"}
ADVOCACY = {"Review Submitted", "Referral Sent", "Product Shared", "Survey Responded"}
STAGES = ("awareness", "consideration", "decision", "retention", "advocacy")
BLOCKED = {"", "null", "none", "undefined", "nan", "anonymous", "guest", "unknown", "n/a",
           "[object object]", "-1"}
RANK = {"user_id": 0, "email": 1, "phone": 2, "anonymous_id": 4}


@pytest.fixture(scope="module")
def messages() -> list[Message]:
    return generate()


def _value(raw: object) -> str | None:
    if not isinstance(raw, str | int):
        return None
    text = str(raw).strip()
    return None if text.lower() in BLOCKED or re.fullmatch(r"[0-]*", text) else text


def keys(m: Message) -> list[Key]:
    """SPEC 2.1 identity keys of a message, highest priority first."""
    found: list[Key] = []
    for field, kind in (("userId", "user_id"), ("anonymousId", "anonymous_id")):
        if (value := _value(m.get(field))) is not None:
            found.append((kind, value))
    places = (m.get("traits") or {}, m.get("context", {}).get("traits") or {},
              m.get("properties") or {})
    for place in places:
        if (email := _value(place.get("email"))) is not None:
            found.append(("email", email.lower()))
        if (phone := _value(re.sub(r"\D", "", str(place.get("phone", ""))))) is not None:
            found.append(("phone", phone))
    for ext in m.get("context", {}).get("externalIds") or []:
        if (value := _value(ext.get("id"))) is not None:
            found.append((ext["type"], value))
    return sorted(set(found), key=lambda k: (RANK.get(k[0], 3), k))


def customers(messages: Iterable[Message]) -> dict[Key, list[Message]]:
    """SPEC 2.2 in miniature: union-find over keys, refusing to join two user_ids."""
    parent: dict[Key, Key] = {}
    user: dict[Key, str | None] = {}

    def find(k: Key) -> Key:
        parent.setdefault(k, k)
        user.setdefault(k, k[1] if k[0] == "user_id" else None)
        while parent[k] != k:
            k = parent[k]
        return k

    ordered = sorted(messages, key=lambda m: (m["timestamp"], m["messageId"]))
    for m in ordered:
        primary, *others = keys(m)
        for other in others:
            a, b = find(primary), find(other)
            if a != b and not (user[a] and user[b] and user[a] != user[b]):
                parent[b] = a
                user[a] = user[a] or user[b]
    groups: dict[Key, list[Message]] = defaultdict(list)
    for m in ordered:
        groups[find(keys(m)[0])].append(m)
    return groups


def reached(events: list[Message]) -> set[str]:
    """Stages a customer reached through an event of its own (SPEC 4.1 default rules)."""
    names = [m.get("event") for m in events]
    stages = {"awareness"}
    if CONSIDERATION & set(names):
        stages.add("consideration")
    if DECISION & set(names):
        stages.add("decision")
    if names.count("Order Completed") >= 2 or {"Subscription Renewed", "Product Used"} & set(names):
        stages.add("retention")
    promoter = any(m.get("event") == "Survey Responded" and m["properties"]["survey"] == "nps"
                   and m["properties"]["score"] >= 9 for m in events)
    if promoter or (ADVOCACY - {"Survey Responded"}) & set(names):
        stages.add("advocacy")
    return stages


def test_7_same_seed_gives_the_same_messages_and_another_seed_does_not() -> None:
    first = generate(customers=40, seed=11)
    assert first == generate(customers=40, seed=11)
    assert first != generate(customers=40, seed=12)


def test_1_1_every_message_is_segment_shaped(messages: list[Message]) -> None:
    assert len({m["messageId"] for m in messages}) == len(messages)
    for m in messages:
        assert m["type"] in {"track", "page", "identify", "group"}
        assert 0 < len(m["messageId"]) <= 100
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", m["timestamp"])
        assert m["context"]["channel"] in {"web", "app", "email", "call", "store"}
        if m["type"] == "track":
            assert m["event"] and isinstance(m["properties"], dict)
        if m["type"] == "page":
            assert set(m["context"]["page"]) >= {"url", "referrer", "path", "title"}
        if m["type"] == "identify":
            assert set(m["traits"]) >= {"email", "name", "persona", "plan", "city"}
        if m["type"] == "group":
            assert m["groupId"] and set(m["traits"]) >= {"name", "industry", "employees"}


def test_2_1_every_message_has_an_identity_key(messages: list[Message]) -> None:
    assert all(keys(m) for m in messages)


def test_timestamps_lie_in_the_window_and_in_order(messages: list[Message]) -> None:
    start = datetime(2025, 3, 1, tzinfo=UTC)
    got = generate(customers=30, start=start, days=20)
    times = [datetime.fromisoformat(m["timestamp"]) for m in got]
    assert times == sorted(times)
    assert start <= times[0] and times[-1] < start + timedelta(days=20)


def test_4_1_every_default_model_event_name_appears(messages: list[Message]) -> None:
    names = {m.get("event") for m in messages}
    assert names >= CONSIDERATION | DECISION | RETENTION | ADVOCACY


def test_every_channel_appears(messages: list[Message]) -> None:
    assert {m["context"]["channel"] for m in messages} == {"web", "app", "email", "call", "store"}


def test_4_1_every_default_stage_has_customers_and_the_funnel_narrows(
    messages: list[Message],
) -> None:
    groups = customers(messages)
    own = Counter(stage for events in groups.values() for stage in reached(events))
    assert all(own[stage] > 0 for stage in STAGES), own
    # SPEC 4.2: reaching a stage reaches every earlier one, so funnel counts are cumulative.
    highest = [max(STAGES.index(s) for s in reached(events)) for events in groups.values()]
    funnel = [sum(h >= k for h in highest) for k in range(len(STAGES))]
    assert funnel == sorted(funnel, reverse=True) and len(set(funnel)) == len(STAGES), funnel


def test_personas_behave_differently(messages: list[Message]) -> None:
    persona = {m["userId"]: m["traits"]["persona"] for m in messages if m["type"] == "identify"}
    assert set(persona.values()) == {p.name for p in PERSONAS}
    orders: Counter[str] = Counter()
    nps: defaultdict[str, list[int]] = defaultdict(list)
    for events in customers(messages).values():
        ids = {m["userId"] for m in events if "userId" in m}
        if len(ids) != 1 or (name := persona.get(ids.pop())) is None:
            continue
        orders[name] += sum(m.get("event") == "Order Completed" for m in events)
        answers = [m["properties"] for m in events if m.get("event") == "Survey Responded"]
        nps[name] += [a["score"] for a in answers if a["survey"] == "nps"]
    per_customer = {name: orders[name] / Counter(persona.values())[name] for name in orders}
    assert per_customer["Loyal Regular"] > 2 * per_customer["Researcher"], per_customer
    mean = {name: sum(scores) / len(scores) for name, scores in nps.items()}
    assert mean["Loyal Regular"] > 8 > 5 > mean["Churn risk"], mean


def test_4_2_some_customers_are_lapsed(messages: list[Message]) -> None:
    newest = datetime.fromisoformat(messages[-1]["timestamp"])
    last = [datetime.fromisoformat(ev[-1]["timestamp"]) for ev in customers(messages).values()]
    assert sum(newest - t > timedelta(days=90) for t in last) > 0


def test_2_2_store_and_phone_first_customers_stitch_to_their_web_login(
    messages: list[Message],
) -> None:
    first_channels = Counter(
        events[0]["context"]["channel"]
        for events in customers(messages).values()
        if any("userId" in m for m in events)
    )
    assert first_channels["store"] > 0 and first_channels["call"] > 0, first_channels


def test_2_2_a_few_devices_are_shared_by_two_users(messages: list[Message]) -> None:
    users: defaultdict[str, set[str]] = defaultdict(set)
    for m in messages:
        if "userId" in m and "anonymousId" in m:
            users[m["anonymousId"]].add(m["userId"])
    assert 0 < sum(len(u) > 1 for u in users.values()) < 20


def test_5_1_b2b_members_join_accounts_and_two_users_share_an_email(
    messages: list[Message],
) -> None:
    members: defaultdict[str, set[str]] = defaultdict(set)
    for m in messages:
        if m["type"] == "group":
            members[m["groupId"]].add(m["userId"])
    assert len(members) >= 2 and all(1 <= len(u) <= 3 for u in members.values()), members
    by_email: defaultdict[str, set[str]] = defaultdict(set)
    for m in messages:
        if m["type"] == "identify":
            by_email[m["traits"]["email"]].add(m["userId"])
    assert sum(len(u) > 1 for u in by_email.values()) >= 1  # refused links (SPEC 2.2)


def test_1_2_campaigns_ride_in_page_urls_and_referrers_name_search_and_social(
    messages: list[Message],
) -> None:
    pages = [m["context"]["page"] for m in messages if m["type"] == "page"]
    sources = {parse_qs(urlsplit(p["url"]).query).get("utm_source", [""])[0] for p in pages}
    assert {"google", "facebook", "newsletter"} <= sources
    hosts = {urlsplit(p["referrer"]).hostname for p in pages if p["referrer"]}
    assert {"www.google.com", "www.facebook.com"} <= hosts


def test_5_survey_scores_stay_in_their_scales(messages: list[Message]) -> None:
    scales = {"nps": range(11), "csat": range(1, 6), "ces": range(1, 8)}
    answers = [m["properties"] for m in messages if m.get("event") == "Survey Responded"]
    assert {a["survey"] for a in answers} == set(scales)
    assert all(a["score"] in scales[a["survey"]] for a in answers)


def test_1_1_batches_keep_order_and_stay_under_the_limits(messages: list[Message]) -> None:
    bodies = list(batches(messages, size=250))
    assert [m for body in bodies for m in body["batch"]] == messages
    assert all(len(body["batch"]) <= 250 for body in bodies)
    assert all(len(orjson.dumps(body)) < 500 * 1024 for body in bodies)
    assert all(len(orjson.dumps(m)) < 32 * 1024 for m in messages)
    with pytest.raises(ConfigError):
        next(batches(messages, size=0))


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ConfigError):
        generate(customers=0)
    with pytest.raises(ConfigError):
        generate(start=datetime(2025, 1, 1))
    assert keys(generate(customers=1, days=1)[0])


def test_1_2_the_collector_reads_every_message_as_sent(messages: list[Message]) -> None:
    from ingest.normalize import normalize  # the real collector normalisation, not a copy

    received = datetime.fromisoformat(messages[-1]["timestamp"]) + timedelta(days=1)
    campaigns = 0
    for m in messages:
        event = normalize(m, received)
        assert event.channel == m["context"]["channel"] and not event.timestamp_flagged
        assert event.timestamp == datetime.fromisoformat(m["timestamp"])
        assert {(k.type, k.value) for k in event.keys} == set(keys(m))
        campaigns += event.has_campaign
    assert campaigns > 0

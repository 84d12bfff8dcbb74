"""SPEC 5.1 Drop-off, over a warehouse built from messages by the real processor (tests/api/
pipeline.py); the expected numbers are worked out next to the messages."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.pipeline import AUTH, client, day, identify, process, track

# Default model, lapse_after 90 days; the watermark is day 200 (late-z), so a customer whose last
# event is before day 110 is lapsed.
MESSAGES: list[dict[str, Any]] = [
    # c1: web, pro; consideration on day 1, last event Cart Viewed on day 3: stopped, 2 days
    identify("m-c1-i", "c1", day(0), plan="pro"),
    track("m-c1-0", "c1", "Page Viewed", day(0)),
    track("m-c1-1", "c1", "Product Viewed", day(1)),
    track("m-c1-2", "c1", "Cart Viewed", day(3)),
    # c2: email; consideration on day 0, last event on day 10: stopped, 10 days
    track("m-c2-0", "c2", "Email Clicked", day(0), "email"),
    track("m-c2-1", "c2", "Email Clicked", day(10), "email"),
    # d1: decision on day 5; two events at the same time on day 20: the larger event_id
    # (m-d1-b, sent first) is the last one. Stopped at decision, 15 days.
    track("m-d1-0", "d1", "Product Viewed", day(0)),
    track("m-d1-1", "d1", "Checkout Started", day(5)),
    track("m-d1-b", "d1", "Pricing Viewed", day(20), "app"),
    track("m-d1-a", "d1", "Product Viewed", day(20)),
    # d2: decision, still active on day 150: not lapsed, not stopped
    track("m-d2-0", "d2", "Checkout Started", day(0)),
    track("m-d2-1", "d2", "Product Viewed", day(150)),
    # edge: last event exactly 90 days before the watermark: not lapsed (more than is needed)
    track("m-e-0", "edge", "Product Viewed", day(110)),
    # a1: one page view: stopped at awareness after 0 days
    track("m-a1-0", "a1", "Page Viewed", day(0)),
    # late-z sets the watermark
    track("m-z-0", "late-z", "Page Viewed", day(200)),
]
STAGES = ("awareness", "consideration", "decision", "retention", "advocacy")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data_dir = tmp_path_factory.mktemp("dropoff")
    process(data_dir, MESSAGES)
    with client(data_dir) as c:
        yield c


def dropoff(c: TestClient, **params: str) -> list[dict[str, Any]]:
    r = c.get("/v1/dropoff", params=params, headers=AUTH)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == params.get("model", "default")
    assert [s["stage"] for s in body["stages"]] == list(STAGES)
    return body["stages"]  # type: ignore[no-any-return]


def by_stage(stages: list[dict[str, Any]], *keys: str) -> list[tuple[Any, ...]]:
    return [tuple(s[k] for k in keys) for s in stages]


def test_5_1_stopped_at_a_stage_is_current_stage_and_lapsed(api: TestClient) -> None:
    stages = dropoff(api)
    assert by_stage(stages, "reached", "stopped", "stop_rate") == [
        (7, 1, 1 / 7), (5, 2, 2 / 5), (2, 1, 1 / 2), (0, 0, None), (0, 0, None)]
    # The same lapsed as the customer profile's (SPEC 4.2): stopped = lapsed at that stage.
    lapsed: Counter[str] = Counter()
    for user in ("c1", "c2", "d1", "d2", "edge", "a1", "late-z"):
        profile = api.get(f"/v1/customers/{user}", headers=AUTH).json()
        if profile["lapsed"]:
            lapsed[profile["stage"]] += 1
    assert lapsed == Counter({s["stage"]: s["stopped"] for s in stages if s["stopped"]})
    # ... and the journey map's lapsed customers per current stage, whatever the selection.
    window = {"from": day(0).isoformat(), "to": day(1).isoformat()}
    for params in ({}, {"channel": "email"}, window):
        board = api.get("/v1/journey-map", params=params, headers=AUTH).json()["stages"]
        assert [s["kpis"]["lapsed_customers"] for s in board] == \
            [s["stopped"] for s in dropoff(api, **params)], params


def test_5_1_median_days_to_stop_from_entering_the_stage_to_the_last_event(
    api: TestClient,
) -> None:
    assert by_stage(dropoff(api), "median_days_to_stop") == [
        (0.0,), (6.0,), (15.0,), (None,), (None,)]  # consideration: median of 2 and 10 days


def test_5_1_last_touchpoint_ties_on_time_go_to_the_larger_event_id(api: TestClient) -> None:
    stages = dropoff(api)
    assert stages[2]["last_touchpoints"] == [
        {"event": "Pricing Viewed", "channel": "app", "customers": 1}]
    assert stages[1]["last_touchpoints"] == [
        {"event": "Cart Viewed", "channel": "web", "customers": 1},
        {"event": "Email Clicked", "channel": "email", "customers": 1}]
    assert stages[0]["last_touchpoints"] == [
        {"event": "Page Viewed", "channel": "web", "customers": 1}]
    assert stages[3]["last_touchpoints"] == stages[4]["last_touchpoints"] == []


def test_5_1_customer_selection_is_the_funnels(api: TestClient) -> None:
    email = dropoff(api, channel="email")
    assert by_stage(email, "reached", "stopped", "median_days_to_stop") == [
        (1, 0, None), (1, 1, 10.0), (0, 0, None), (0, 0, None), (0, 0, None)]
    pro = dropoff(api, **{"trait.plan": "pro"})
    assert by_stage(pro, "reached", "stopped") == [(1, 0), (1, 1), (0, 0), (0, 0), (0, 0)]
    # first_seen in [day 0, day 110): everyone but edge and late-z
    window = dropoff(api, **{"from": day(0).isoformat(), "to": day(110).isoformat()})
    assert by_stage(window, "reached", "stopped") == [(5, 1), (4, 2), (2, 1), (0, 0), (0, 0)]
    for params in ({}, {"channel": "email"}, {"trait.plan": "pro"}):
        funnel = api.get("/v1/funnel", params=params, headers=AUTH).json()["stages"]
        assert [s["reached"] for s in dropoff(api, **params)] == [s["customers"] for s in funnel]


def test_5_1_bad_parameters_are_400(api: TestClient) -> None:
    for params in ({"model": "nope"}, {"from": "yesterday"}, {"channel": "fax"},
                   {"trait.nope": "x"}):
        r = api.get("/v1/dropoff", params=params, headers=AUTH)
        assert r.status_code == 400, (params, r.text)
        assert r.headers["content-type"].startswith("application/json")


def top5_messages() -> list[dict[str, Any]]:
    """Ten customers stopped at consideration, their last events counted:
    Product Viewed/web 3, Cart Viewed/app 2, Cart Viewed/web 2, then 1 each for Email Clicked,
    Pricing Viewed and Products Searched (the sixth: cut)."""
    lasts = [("Product Viewed", "web")] * 3 + [("Cart Viewed", "web")] * 2 + \
        [("Cart Viewed", "app")] * 2 + [("Products Searched", "web"), ("Pricing Viewed", "web"),
                                        ("Email Clicked", "email")]
    out = []
    for i, (event, channel) in enumerate(lasts):
        out.append(track(f"t{i}-0", f"t{i}", "Product Viewed", day(i)))
        out.append(track(f"t{i}-1", f"t{i}", event, day(i + 1), channel))
    out.append(track("tz", "tz", "Page Viewed", day(300)))
    return out


def test_5_1_top_five_last_touchpoints_by_customers_then_event_then_channel(
    tmp_path: Path,
) -> None:
    process(tmp_path, top5_messages())
    with client(tmp_path) as c:
        consideration = dropoff(c)[1]
    assert (consideration["reached"], consideration["stopped"]) == (10, 10)
    assert consideration["median_days_to_stop"] == 1.0
    assert [(t["event"], t["channel"], t["customers"])
            for t in consideration["last_touchpoints"]] == [
        ("Product Viewed", "web", 3), ("Cart Viewed", "app", 2), ("Cart Viewed", "web", 2),
        ("Email Clicked", "email", 1), ("Pricing Viewed", "web", 1)]


def test_5_1_arrival_order_and_batching_give_the_same_dropoff(
    api: TestClient, tmp_path: Path,
) -> None:
    shuffled = list(MESSAGES)
    random.Random(5).shuffle(shuffled)
    process(tmp_path, shuffled, chunks=(2, 5, 9, 12), batch_max=3)
    with client(tmp_path) as other:
        for params in ({}, {"channel": "email"}, {"trait.plan": "pro"},
                       {"from": day(0).isoformat(), "to": day(110).isoformat()}):
            assert dropoff(other, **params) == dropoff(api, **params), params

"""SPEC 6.2 /v1/customers/{key}: any identity key finds the customer; its events by time."""

from __future__ import annotations

import duckdb
import pytest

from api.errors import CustomerNotFoundError
from api.metrics.customers import customer, customer_events, find_customer
from api.metrics.filters import load_model
from tests.api.conftest import Dataset, at


@pytest.fixture
def loaded(con: duckdb.DuckDBPyConnection, data: Dataset) -> duckdb.DuckDBPyConnection:
    data.watermark = at(200)
    data.customer("c1", at(0), at(100), events=3, traits={"plan": "pro", "age": 41},
                  keys=(("anonymous_id", "anon:1"), ("email", "a@b.c"), ("user_id", "u1")))
    data.stages("c1", [at(0), at(0, 5), at(1)], inferred=(2,))
    data.session("s2", "c1", at(1), source="google")
    data.session("s1", "c1", at(0), channel="app", duration_s=5, events=2)
    data.event("e3", "c1", at(1), "Checkout Started", "decision", key=("user_id", "u1"))
    data.event("e1", "c1", at(0), "Screen Viewed", "awareness", key=("anonymous_id", "anon:1"))
    data.event("e2", "c1", at(0, 5), "Product Viewed", "consideration", key=("email", "a@b.c"))
    # another customer whose email key has c1's user id as its value
    data.customer("c2", at(50), at(150), keys=(("email", "u1"),))
    data.event("x1", "c2", at(50), "Page Viewed", "awareness", key=("email", "u1"))
    data.load(con)
    return con


def test_2_2_any_identity_key_finds_the_customer(loaded: duckdb.DuckDBPyConnection) -> None:
    for key in ("u1", "user_id:u1", "a@b.c", "email:a@b.c", "anon:1", "anonymous_id:anon:1"):
        assert find_customer(loaded, key) == "c1", key
    assert find_customer(loaded, "email:u1") == "c2"  # the typed prefix picks the key type


def test_6_2_unknown_key_is_not_found(loaded: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(CustomerNotFoundError) as info:
        find_customer(loaded, "phone:123")
    assert info.value.status == 404 and info.value.context == {"key": "phone:123"}


def test_6_2_customer_shape(loaded: duckdb.DuckDBPyConnection) -> None:
    out = customer(loaded, load_model(loaded, "default"), "a@b.c")
    assert out == {
        "customer_id": "c1",
        "identities": [{"type": "user_id", "value": "u1"}, {"type": "email", "value": "a@b.c"},
                       {"type": "anonymous_id", "value": "anon:1"}],
        "traits": {"plan": "pro", "age": 41},
        "stage": "decision",
        "first_seen": "2024-01-01T00:00:00Z",
        "last_seen": "2024-04-10T00:00:00Z",
        "lapsed": True,  # 100 days before the watermark, lapse_after 90 days
        "stages": [
            {"stage": "awareness", "entered_at": "2024-01-01T00:00:00Z", "inferred": False},
            {"stage": "consideration", "entered_at": "2024-01-01T00:00:05Z", "inferred": True},
            {"stage": "decision", "entered_at": "2024-01-02T00:00:00Z", "inferred": False},
        ],
        "sessions": [
            {"session_id": "s1", "channel": "app", "start": "2024-01-01T00:00:00Z",
             "end": "2024-01-01T00:00:05Z", "event_count": 2, "source": "(direct)",
             "medium": "(none)", "campaign": None},
            {"session_id": "s2", "channel": "web", "start": "2024-01-02T00:00:00Z",
             "end": "2024-01-02T00:00:00Z", "event_count": 1, "source": "google",
             "medium": "(none)", "campaign": None},
        ],
    }
    assert customer(loaded, load_model(loaded, "default"), "email:u1")["lapsed"] is False


def test_6_2_customer_events_of_every_identity_by_time(
    loaded: duckdb.DuckDBPyConnection,
) -> None:
    events = customer_events(loaded, "u1", limit=10)
    assert [e["event_id"] for e in events] == ["e1", "e2", "e3"]
    assert events[0]["timestamp"] == "2024-01-01T00:00:00Z"
    assert events[0]["keys"] == [{"type": "anonymous_id", "value": "anon:1"}]
    assert events[0]["properties"] == {}
    assert [e["event_id"] for e in customer_events(loaded, "u1", limit=1, offset=1)] == ["e2"]
    assert [e["event_id"] for e in customer_events(loaded, "email:u1", limit=10)] == ["x1"]


@pytest.mark.parametrize(
    ("last_seen_day", "lapsed"), [(110, False), (109.99999, True)],
    ids=["exactly lapse_after before the watermark", "a moment more"],
)
def test_4_2_lapse_at_exactly_lapse_after_is_not_lapsed(
    con: duckdb.DuckDBPyConnection, data: Dataset, last_seen_day: float, lapsed: bool
) -> None:
    data.watermark = at(200)  # lapse_after 90 days: lapsed when MORE than 90 days before it
    data.customer("c1", at(0), at(last_seen_day), keys=(("user_id", "u1"),))
    data.stages("c1", [at(0)])
    data.load(con)
    assert customer(con, load_model(con, "default"), "u1")["lapsed"] is lapsed

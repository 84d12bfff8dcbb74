"""SPEC 1.2 canonical event rules, one Segment message at a time (pure: no log, no HTTP)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.errors import InvalidEventError
from ingest.normalize import normalize

RECEIVED = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)  # the pure tests' collector clock


def msg(**fields: Any) -> dict[str, Any]:
    """A minimal valid track message with the given fields on top."""
    return {"type": "track", "event": "Order Completed", "userId": "u1", **fields}


@pytest.mark.parametrize(
    ("message_id", "expected"),
    [("m-1", "m-1"), (12345, "12345"), ("x" * 100, "x" * 100)],
)
def test_1_2_event_id_is_message_id(message_id: Any, expected: str) -> None:
    assert normalize(msg(messageId=message_id), RECEIVED).event_id == expected


def test_1_2_event_id_generated_when_absent() -> None:
    first, second = normalize(msg(), RECEIVED), normalize(msg(), RECEIVED)
    assert uuid.UUID(first.event_id).version == 4
    assert first.event_id != second.event_id


def test_1_2_message_id_over_100_chars_is_rejected() -> None:
    with pytest.raises(InvalidEventError, match="messageId"):
        normalize(msg(messageId="x" * 101), RECEIVED)


@pytest.mark.parametrize(
    ("kind", "extra", "name"),
    [
        ("track", {"event": "Signed Up"}, "Signed Up"),
        ("page", {}, "Page Viewed"),
        ("screen", {}, "Screen Viewed"),
        ("identify", {}, "Identified"),
        ("alias", {"previousId": "a1"}, "Aliased"),
        ("group", {"groupId": "g1"}, "Grouped"),
    ],
)
def test_1_2_event_name_per_type(kind: str, extra: dict[str, Any], name: str) -> None:
    event = normalize({"type": kind, "userId": "u1", **extra}, RECEIVED)
    assert (event.type, event.event) == (kind, name)


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({"type": "track", "userId": "u1"}, "event"),
        ({"type": "track", "event": 7, "userId": "u1"}, "event"),
        ({"type": "click", "event": "x", "userId": "u1"}, "type"),
        (msg(properties=[1, 2]), "properties must be an object"),
        (msg(context="web"), "context must be an object"),
        (msg(userId={"id": 1}), "userId must be a string or a number"),
        (msg(userId=True), "userId"),
        (msg(timestamp=1714564800), "timestamp must be an ISO-8601 string"),
        (msg(timestamp="yesterday"), "timestamp is not an ISO-8601 time"),
        (msg(context={"externalIds": {"id": "1"}}), "externalIds must be a list"),
        (msg(context={"externalIds": [{"id": "1"}]}), r"externalIds\[0\].type"),
    ],
)
def test_1_3_wrong_type_on_known_field_is_rejected(message: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidEventError, match=reason):
        normalize(message, RECEIVED)


# (properties.channel, context.channel, top-level channel, type) -> channel
CHANNEL_TABLE = [
    ("Email", "web", "browser", "track", "email"),
    (None, " CALL ", "browser", "track", "call"),
    ("tv", "radio", "store", "track", "store"),
    (None, None, "browser", "track", "web"),
    (None, None, "mobile", "track", "app"),
    (None, None, "server", "page", "web"),
    (None, None, None, "screen", "app"),
    (None, None, "server", "track", "other"),
    (42, None, None, "identify", "other"),
]


@pytest.mark.parametrize(("prop", "ctx", "top", "kind", "expected"), CHANNEL_TABLE)
def test_1_2_channel_rule(prop: Any, ctx: Any, top: Any, kind: str, expected: str) -> None:
    message: dict[str, Any] = {"type": kind, "event": "E", "userId": "u1", "properties": {},
                               "context": {}}
    if prop is not None:
        message["properties"]["channel"] = prop
    if ctx is not None:
        message["context"]["channel"] = ctx
    if top is not None:
        message["channel"] = top
    assert normalize(message, RECEIVED).channel == expected


def test_1_2_sentat_skew_correction() -> None:
    # The device clock is 3 days behind; the event happened 90 s before it was sent.
    event = normalize(msg(sentAt="2024-04-28T12:00:00Z", originalTimestamp="2024-04-28T11:58:30Z",
                          timestamp="2020-01-01T00:00:00Z"), RECEIVED)
    assert event.timestamp == RECEIVED - timedelta(seconds=90)
    assert not event.timestamp_flagged


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"timestamp": "2024-04-30T10:00:00+02:00", "originalTimestamp": "2024-01-01T00:00:00Z"},
         datetime(2024, 4, 30, 8, 0, tzinfo=UTC)),
        ({"originalTimestamp": "2024-04-30T08:00:00Z", "sentAt": None},
         datetime(2024, 4, 30, 8, 0, tzinfo=UTC)),
        ({"sentAt": "2024-04-30T08:00:00Z"}, RECEIVED),
        ({}, RECEIVED),
        ({"timestamp": "2019-03-01T00:00:00"}, datetime(2019, 3, 1, tzinfo=UTC)),
    ],
)
def test_1_2_timestamp_fallbacks(fields: dict[str, Any], expected: datetime) -> None:
    event = normalize(msg(**fields), RECEIVED)
    assert event.timestamp == expected
    assert event.timestamp.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("late_by", "flagged"),
    [(timedelta(hours=24), False), (timedelta(hours=24, seconds=1), True),
     (timedelta(days=400), True)],
)
def test_1_2_future_timestamp_clamped_and_flagged(late_by: timedelta, flagged: bool) -> None:
    event = normalize(msg(timestamp=(RECEIVED + late_by).isoformat()), RECEIVED)
    assert event.timestamp_flagged is flagged
    assert event.timestamp == (RECEIVED if flagged else RECEIVED + late_by)


def test_1_2_historical_times_are_accepted() -> None:
    event = normalize(msg(timestamp="2001-09-09T01:46:40Z"), RECEIVED)
    assert event.timestamp == datetime(2001, 9, 9, 1, 46, 40, tzinfo=UTC)
    assert event.received_at == RECEIVED


def test_1_2_campaign_from_context_campaign_wins_over_utm() -> None:
    context = {"campaign": {"source": "newsletter", "medium": "email", "name": "spring"},
               "page": {"url": "https://shop.example/?utm_source=ads&utm_medium=cpc"}}
    event = normalize(msg(context=context, channel="browser"), RECEIVED)
    assert event.campaign == ("newsletter", "email", "spring")
    assert (event.source, event.medium) == ("newsletter", "email")


def test_1_2_campaign_from_utm_in_page_url() -> None:
    url = "https://shop.example/p?utm_source=google&utm_medium=cpc&utm_campaign=brand%20q2"
    event = normalize({"type": "page", "anonymousId": "a1", "context": {"page": {"url": url}}},
                      RECEIVED)
    assert event.campaign == ("google", "cpc", "brand q2")
    assert (event.source, event.medium, event.page_url) == ("google", "cpc", url)


@pytest.mark.parametrize(
    ("url", "referrer", "channel", "expected"),
    [
        ("https://shop.example/a", "https://www.google.com/search?q=x", "browser",
         ("www.google.com", "referral")),
        ("https://shop.example/a", "https://SHOP.example/b", "browser", ("(direct)", "(none)")),
        ("https://shop.example/a", None, "mobile", ("(direct)", "(none)")),
        (None, None, "server", ("other", "(none)")),
    ],
)
def test_1_2_referrer_on_other_host_is_referral(
    url: str | None, referrer: str | None, channel: str, expected: tuple[str, str]
) -> None:
    page = {k: v for k, v in (("url", url), ("referrer", referrer)) if v is not None}
    event = normalize(msg(channel=channel, context={"page": page}), RECEIVED)
    assert (event.source, event.medium) == expected


def test_1_2_non_web_channel_source_is_the_channel() -> None:
    event = normalize(msg(properties={"channel": "email"},
                          context={"page": {"referrer": "https://mail.google.com/"}}), RECEIVED)
    assert (event.source, event.medium) == ("email", "(none)")


def test_1_2_page_url_from_properties_for_page_events() -> None:
    page = normalize({"type": "page", "userId": "u1", "properties": {"url": "https://a.example/x"}},
                     RECEIVED)
    track = normalize(msg(properties={"url": "https://a.example/x"}), RECEIVED)
    assert (page.page_url, track.page_url) == ("https://a.example/x", None)


def test_1_2_properties_traits_context_kept_as_sent() -> None:
    context = {"traits": {"plan": "pro"}, "library": {"name": "analytics.js"}, "locale": "de-DE"}
    event = normalize({"type": "identify", "userId": 7, "traits": {"name": "Ada", "age": 36},
                       "context": context}, RECEIVED)
    assert event.traits == {"name": "Ada", "age": 36}
    assert event.context == context
    assert [(k.type, k.value) for k in event.keys] == [("user_id", "7")]


def test_2_1_group_traits_are_not_customer_traits() -> None:
    event = normalize({"type": "group", "userId": "u1", "groupId": 99,
                       "traits": {"email": "sales@acme.example", "name": "Acme"}}, RECEIVED)
    assert event.traits == {}
    assert event.properties["group_traits"] == {"email": "sales@acme.example", "name": "Acme"}
    assert event.properties["group_id"] == "99"
    assert [k.type for k in event.keys] == ["user_id"]


def test_2_1_alias_previous_id_kept_raw_and_blocked_dropped() -> None:
    alias = normalize({"type": "alias", "userId": "u1", "previousId": "anon-9"}, RECEIVED)
    blocked = normalize({"type": "alias", "userId": "u1", "previousId": "undefined"}, RECEIVED)
    numeric = normalize({"type": "alias", "userId": "u1", "previousId": 31}, RECEIVED)
    track = normalize(msg(previousId="anon-9"), RECEIVED)
    assert (alias.previous_id, blocked.previous_id, numeric.previous_id) == ("anon-9", None, "31")
    assert track.previous_id is None


def test_1_3_no_identity_key_is_rejected() -> None:
    with pytest.raises(InvalidEventError, match="no identity key"):
        normalize({"type": "track", "event": "E", "userId": "null", "anonymousId": " "}, RECEIVED)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=3),
    max_leaves=8,
)
FIELDS = st.sampled_from(["type", "event", "userId", "anonymousId", "messageId", "timestamp",
                          "sentAt", "originalTimestamp", "context", "properties", "traits",
                          "channel", "previousId", "groupId"])


VALUES = JSON | st.datetimes().map(lambda d: d.isoformat()) | st.sampled_from(
    ["track", "page", "alias", "identify", "group", "screen", "0", "-1", "2024-05-03T00:00:00Z"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(FIELDS, VALUES))
def test_1_3_any_message_is_an_event_or_a_bad_event(message: dict[str, Any]) -> None:
    try:
        event = normalize(message, RECEIVED)
    except InvalidEventError:
        return
    assert event.keys
    assert event.timestamp <= RECEIVED + timedelta(days=1)

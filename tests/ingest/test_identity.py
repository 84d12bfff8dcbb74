"""SPEC 2.1 identity keys: where each key comes from, how it is normalised, what is blocked."""

from __future__ import annotations

from typing import Any

import pytest

from ingest.errors import InvalidEventError
from ingest.identity import extract_keys
from journey.keys import is_blocked

BLOCKED = ["", "  ", "null", "NULL", " None ", "undefined", "NaN", "anonymous", "Guest", "unknown",
           "N/A", "[object Object]", "0", "000", "-", "--", "0-0-0", "-1", " -1 "]
NOT_BLOCKED = ["1", "-2", "10", "user-0", "a", "nullable", "0x0", "-1-", "guest1"]


def keys_of(message: dict[str, Any], traits: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    return [(k.type, k.value) for k in extract_keys(message, traits or {})]


@pytest.mark.parametrize("value", BLOCKED)
def test_2_1_blocked_values_are_not_keys(value: str) -> None:
    assert is_blocked(value)
    message = {"userId": value, "anonymousId": value, "properties": {"email": value},
               "context": {"externalIds": [{"id": value, "type": "crm_id"}]}}
    assert keys_of(message) == []


@pytest.mark.parametrize("value", NOT_BLOCKED)
def test_2_1_ordinary_values_are_keys(value: str) -> None:
    assert not is_blocked(value)
    assert keys_of({"userId": value}) == [("user_id", value)]


def test_2_1_numeric_user_id_becomes_a_string() -> None:
    assert keys_of({"userId": 42, "anonymousId": 7.0}) == [("user_id", "42"), ("anonymous_id", "7")]


def test_2_1_numeric_zero_and_minus_one_are_blocked() -> None:
    assert keys_of({"userId": 0, "anonymousId": -1}) == []


def test_2_1_ids_are_trimmed() -> None:
    assert keys_of({"userId": "  u-1 \n"}) == [("user_id", "u-1")]


@pytest.mark.parametrize(
    ("message", "traits", "email"),
    [
        ({}, {"email": "  Ada@Example.COM "}, "ada@example.com"),
        ({"context": {"traits": {"email": "B@x.io"}}}, {}, "b@x.io"),
        ({"properties": {"email": "C@x.io"}}, {}, "c@x.io"),
        # Top-level identify traits come first, then context.traits, then properties.
        ({"context": {"traits": {"email": "ctx@x.io"}}, "properties": {"email": "p@x.io"}},
         {"email": "t@x.io"}, "t@x.io"),
        ({"context": {"traits": {"email": "none"}}, "properties": {"email": "p@x.io"}}, {},
         "p@x.io"),
    ],
)
def test_2_1_email_from_traits_context_traits_or_properties(
    message: dict[str, Any], traits: dict[str, Any], email: str
) -> None:
    assert keys_of(message, traits) == [("email", email)]


@pytest.mark.parametrize(
    ("phone", "digits"),
    [("+1 (555) 010-9999", "15550109999"), (4930123456, "4930123456"), ("n/a", None),
     ("000-000", None), ("ext.", None)],
)
def test_2_1_phone_is_digits_only(phone: Any, digits: str | None) -> None:
    expected = [] if digits is None else [("phone", digits)]
    assert keys_of({"context": {"traits": {"phone": phone}}}) == expected


def test_2_1_external_ids_are_custom_key_types() -> None:
    message = {"anonymousId": "a-1", "context": {"externalIds": [
        {"id": "LC-77", "type": "loyalty_card", "collection": "users"},
        {"id": 991, "type": " CRM_ID "},
        {"id": "X@Y.io", "type": "email"},
        {"id": "unknown", "type": "ga_client_id"},
    ]}}
    assert sorted(keys_of(message)) == [("anonymous_id", "a-1"), ("crm_id", "991"),
                                        ("email", "x@y.io"), ("loyalty_card", "LC-77")]


def test_2_1_over_long_id_is_rejected() -> None:
    with pytest.raises(InvalidEventError, match="userId is longer"):
        extract_keys({"userId": "u" * 1025}, {})

"""SPEC 1.1 wire format: encodings, auth, limits, batch merging; pure and through HTTP."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from ingest.errors import (
    AuthError,
    MalformedBodyError,
    TooLargeError,
    UnsupportedEncodingError,
)
from ingest.wire import authenticate, decode_body, key_name, messages_of, parse_body
from journey.log.base import Record
from journey.log.embedded import EmbeddedLog

KEYS = [SecretStr("k-one"), SecretStr("k-two")]
TRACK = {"type": "track", "event": "Signed Up", "userId": "u1"}
Basic = Callable[..., dict[str, str]]
ReadLog = Callable[[EmbeddedLog], list[Record]]


@pytest.mark.parametrize("encoding", ["gzip", "GZIP", "x-gzip"])
def test_1_1_gzip_decoded_by_content_encoding(encoding: str) -> None:
    assert decode_body(gzip.compress(b'{"a": 1}'), encoding, 1000) == b'{"a": 1}'


def test_1_1_deflate_and_identity() -> None:
    assert decode_body(zlib.compress(b"{}"), "deflate", 10) == b"{}"
    assert decode_body(b"{}", None, 10) == decode_body(b"{}", "identity", 10) == b"{}"


def test_1_1_multi_member_gzip() -> None:
    assert decode_body(gzip.compress(b'{"a":') + gzip.compress(b"1}"), "gzip", 100) == b'{"a":1}'


@pytest.mark.parametrize(
    ("raw", "encoding", "error"),
    [
        (b"not gzip at all", "gzip", MalformedBodyError),
        (gzip.compress(b'{"a": 1}')[:-12], "gzip", MalformedBodyError),
        (b"{}", "br", UnsupportedEncodingError),
        (gzip.compress(b"0" * 5000), "gzip", TooLargeError),  # a small bomb is still a bomb
    ],
)
def test_1_3_bad_encodings_are_named(raw: bytes, encoding: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_body(raw, encoding, 1000)


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b'{"a": ', "malformed JSON"), (b"[1, 2]", "must be an object"), (b"", "malformed JSON"),
     (gzip.compress(b"{}"), "no Content-Encoding")],
)
def test_1_3_malformed_body(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedBodyError, match=reason):
        parse_body(data)


@pytest.mark.parametrize(
    ("authorization", "body"),
    [("Basic azEtdHdvOg==", {}),  # base64("k1-two:"): a near miss
     ("Bearer k-one", {}), ("Basic !!!", {}), (None, {}), (None, {"writeKey": 5}),
     (None, {"writeKey": "k-three"})],
)
def test_1_1_bad_or_missing_write_key(authorization: str | None, body: dict[str, Any]) -> None:
    with pytest.raises(AuthError):
        authenticate(authorization, body, KEYS)


@pytest.mark.parametrize(
    ("authorization", "body"),
    [("Basic ay10d286", {}), ("Basic ay10d28=", {}), ("basic  ay10d286 ", {}),
     (None, {"writeKey": "k-two"})],
)
def test_1_1_write_key_by_basic_with_or_without_colon_or_in_body(
    authorization: str | None, body: dict[str, Any]
) -> None:
    assert authenticate(authorization, body, KEYS) == key_name("k-two")
    assert "k-two" not in key_name("k-two")


def test_1_1_no_configured_keys_rejects_every_request() -> None:
    with pytest.raises(AuthError, match="JOURNEY_WRITE_KEYS"):
        authenticate(None, {"writeKey": ""}, [])


def test_1_1_batch_context_and_integrations_merged_into_items() -> None:
    body = {
        "writeKey": "secret", "sentAt": "2024-05-01T11:59:59Z",
        "context": {"library": {"name": "analytics-python"}, "locale": "en-GB",
                    "page": {"url": "https://batch.example/"}},
        "integrations": {"All": False},
        "batch": [
            {**TRACK, "context": {"locale": "de-DE", "page": {"referrer": "https://r.example/"}}},
            {**TRACK, "integrations": {"Mixpanel": True}, "sentAt": "2024-05-01T11:00:00Z",
             "writeKey": "secret"},
            "not an object",
        ],
    }
    (_, first), (_, second), (_, third) = messages_of(body, None, 10)
    assert first["context"] == {"library": {"name": "analytics-python"}, "locale": "de-DE",
                                "page": {"url": "https://batch.example/",
                                         "referrer": "https://r.example/"}}
    assert first["integrations"] == {"All": False} and first["sentAt"] == "2024-05-01T11:59:59Z"
    assert second["integrations"] == {"All": False, "Mixpanel": True}
    assert second["sentAt"] == "2024-05-01T11:00:00Z" and "writeKey" not in second
    assert third == "not an object"


def test_1_1_single_message_type_comes_from_the_endpoint() -> None:
    [(size, message)] = messages_of({**TRACK, "type": "page", "writeKey": "k"}, "track", 10)
    assert message["type"] == "track" and "writeKey" not in message
    assert size == len(orjson.dumps({**TRACK, "type": "page"}))


def test_1_1_batch_over_the_event_limit_is_413() -> None:
    with pytest.raises(TooLargeError, match="3 events"):
        messages_of({"batch": [TRACK] * 3}, None, 2)


@pytest.mark.parametrize("body", [{"batch": {"a": 1}}, {}, {"batch": [], "context": "x"}])
def test_1_3_batch_of_the_wrong_shape(body: dict[str, Any]) -> None:
    with pytest.raises(MalformedBodyError):
        messages_of(body, None, 10)


# Through HTTP: what SDKs really send.


def test_1_1_gzip_sent_as_form_urlencoded_is_accepted(
    client: TestClient, log: EmbeddedLog, basic: Basic, read_log: ReadLog
) -> None:
    body = gzip.compress(orjson.dumps({"batch": [TRACK, {**TRACK, "userId": "u2"}]}))
    headers = {**basic(), "Content-Encoding": "gzip",
               "Content-Type": "application/x-www-form-urlencoded"}
    response = client.post("/v1/batch", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True}
    assert len(read_log(log)) == 2


def test_1_1_text_plain_with_write_key_in_body(
    client: TestClient, log: EmbeddedLog, write_key: str, read_log: ReadLog
) -> None:
    body = orjson.dumps({**TRACK, "writeKey": write_key})
    response = client.post("/v1/t", content=body, headers={"Content-Type": "text/plain"})
    assert response.status_code == 200, response.text
    [record] = read_log(log)
    assert write_key.encode() not in record.value


@pytest.mark.parametrize("colon", [True, False])
def test_1_1_basic_auth_with_and_without_colon(
    client: TestClient, basic: Basic, colon: bool, write_key: str
) -> None:
    response = client.post("/v1/track", json=TRACK, headers=basic(write_key, colon=colon))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("headers", "body"),
    [({}, TRACK), ({"Authorization": "Basic d3Jvbmc6"}, TRACK), ({}, {**TRACK, "writeKey": "no"})],
)
def test_1_3_bad_write_key_is_401(
    client: TestClient, log: EmbeddedLog, headers: dict[str, str], body: dict[str, Any],
    read_log: ReadLog,
) -> None:
    response = client.post("/v1/track", json=body, headers=headers)
    assert response.status_code == 401
    assert response.json()["success"] is False and "write key" in response.json()["error"]
    assert read_log(log) == []


def test_1_1_request_over_500kb_is_413(
    client: TestClient, basic: Basic, log: EmbeddedLog, read_log: ReadLog
) -> None:
    events = [{**TRACK, "properties": {"pad": "x" * 20_000}} for _ in range(26)]
    response = client.post("/v1/batch", content=orjson.dumps({"batch": events}), headers=basic())
    assert response.status_code == 413 and "limit" in response.json()["error"]
    assert read_log(log) == []


def test_1_1_gzip_that_inflates_over_500kb_is_413(client: TestClient, basic: Basic) -> None:
    events = [{**TRACK, "properties": {"pad": "x" * 20_000}} for _ in range(26)]
    body = gzip.compress(orjson.dumps({"batch": events}))
    assert len(body) < 10_000
    response = client.post("/v1/batch", content=body,
                           headers={**basic(), "Content-Encoding": "gzip"})
    assert response.status_code == 413


def test_1_1_batch_of_2501_events_is_413(client: TestClient, basic: Basic) -> None:
    body = gzip.compress(orjson.dumps({"batch": [TRACK] * 2501}))
    response = client.post("/v1/batch", content=body,
                           headers={**basic(), "Content-Encoding": "gzip"})
    assert response.status_code == 413 and "2501 events" in response.json()["error"]


def test_1_1_event_over_32kb_is_rejected_alone(
    client: TestClient, basic: Basic, log: EmbeddedLog, read_log: ReadLog
) -> None:
    big = {**TRACK, "properties": {"pad": "x" * 33_000}}
    response = client.post("/v1/batch", json={"batch": [TRACK, big]}, headers=basic())
    assert response.status_code == 200
    [rejected] = response.json()["rejected"]
    assert rejected["index"] == 1 and "limit is 32768" in rejected["reason"]
    assert len(read_log(log)) == 1
    single = client.post("/v1/track", json=big, headers=basic())
    assert single.status_code == 413


@pytest.mark.parametrize(
    ("body", "headers", "status", "reason"),
    [
        (b'{"batch": [', {}, 400, "malformed JSON"),
        (b"\x1f\x8b\x08junk", {"Content-Encoding": "gzip"}, 400, "gzip"),
        (b"{}", {"Content-Encoding": "br"}, 415, "br"),
        (b'{"batch": 5}', {}, 400, "batch must be a list"),
    ],
)
def test_1_3_bad_bodies_get_4xx_naming_the_problem(
    client: TestClient, basic: Basic, body: bytes, headers: dict[str, str], status: int,
    reason: str,
) -> None:
    response = client.post("/v1/batch", content=body, headers={**basic(), **headers})
    assert response.status_code == status
    assert reason in response.json()["error"]

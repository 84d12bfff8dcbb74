"""The collector through HTTP with the real embedded log (SPEC 1.1, 1.3; contract of ingest/)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from ingest.routes import ENDPOINTS
from ingest.settings import IngestSettings
from ingest.wire import key_name
from journey.deadletter import list_dead_letters
from journey.log.base import Record, partition_for
from journey.log.embedded import EmbeddedLog
from journey.schema import Event

Basic = Callable[..., dict[str, str]]
ReadLog = Callable[[EmbeddedLog], list[Record]]
TRACK = {"type": "track", "event": "Product Viewed", "anonymousId": "anon-1"}
BODIES: dict[str | None, dict[str, Any]] = {
    "track": {"event": "Product Viewed", "anonymousId": "anon-1"},
    "identify": {"userId": "u1", "anonymousId": "anon-1", "traits": {"email": "A@x.io"}},
    "page": {"anonymousId": "anon-1", "context": {"page": {"url": "https://s.example/"}}},
    "screen": {"anonymousId": "anon-1", "name": "Home"},
    "group": {"userId": "u1", "groupId": "g1"},
    "alias": {"userId": "u1", "previousId": "anon-1"},
    None: {"batch": [TRACK, {"type": "page", "anonymousId": "anon-1"}]},
}


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_1_1_every_endpoint_and_short_form_stores_its_events(
    name: str, client: TestClient, log: EmbeddedLog, basic: Basic, read_log: ReadLog,
    received: datetime,
) -> None:
    kind = ENDPOINTS[name]
    response = client.post(f"/v1/{name}", json=BODIES[kind], headers=basic())
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True}
    events = [Event.from_json(r.value) for r in read_log(log)]
    expected = [m["type"] for m in BODIES[None]["batch"]] if kind is None else [kind]
    assert sorted(e.type for e in events) == sorted(expected)
    assert all(e.received_at == received for e in events)


def test_1_3_partial_batch_stores_the_good_and_names_the_bad(
    client: TestClient, log: EmbeddedLog, basic: Basic, read_log: ReadLog,
    settings: IngestSettings, write_key: str,
) -> None:
    batch = [
        {**TRACK, "messageId": "ok-0"},
        {**TRACK, "messageId": "bad-1", "anonymousId": "undefined"},
        {**TRACK, "messageId": "ok-2"},
        {**TRACK, "messageId": "bad-3", "timestamp": "last tuesday"},
        ["not", "an", "event"],
    ]
    response = client.post("/v1/batch", json={"batch": batch}, headers=basic())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    assert [r["index"] for r in body["rejected"]] == [1, 3, 4]
    assert "no identity key" in body["rejected"][0]["reason"]
    assert "timestamp" in body["rejected"][1]["reason"]
    assert sorted(Event.from_json(r.value).event_id for r in read_log(log)) == ["ok-0", "ok-2"]
    letters = list_dead_letters(settings.data_dir / "deadletter", 10)
    assert sorted(d.index for d in letters if d.index is not None) == [1, 3, 4]
    assert {letter.write_key for letter in letters} == {key_name(write_key)}
    dead_file = (settings.data_dir / "deadletter" / "collector.jsonl").read_bytes()
    assert write_key.encode() not in dead_file


def test_1_3_batch_with_only_bad_events_is_400(
    client: TestClient, log: EmbeddedLog, basic: Basic, read_log: ReadLog,
    settings: IngestSettings,
) -> None:
    batch = [{"type": "track", "userId": "u1"}, {"type": "track", "event": "E"}]
    response = client.post("/v1/batch", json={"batch": batch}, headers=basic())
    assert response.status_code == 400
    assert [r["index"] for r in response.json()["rejected"]] == [0, 1]
    assert read_log(log) == []
    assert len(list_dead_letters(settings.data_dir / "deadletter", 10)) == 2


def test_1_3_single_bad_event_is_400_and_dead_lettered(
    client: TestClient, basic: Basic, settings: IngestSettings
) -> None:
    response = client.post("/v1/identify", json={"traits": {"name": "x"}}, headers=basic())
    assert response.status_code == 400 and "no identity key" in response.json()["error"]
    [letter] = list_dead_letters(settings.data_dir / "deadletter", 10)
    assert letter.event == {"traits": {"name": "x"}, "type": "identify"}


def test_1_3_log_unavailable_is_503_with_retry_after_and_nothing_stored(
    client: TestClient, log: EmbeddedLog, basic: Basic, read_log: ReadLog
) -> None:
    batch = {"batch": [{**TRACK, "messageId": "m-1"}, {**TRACK, "messageId": "m-2"}]}
    blocker = sqlite3.connect(log.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the log's write lock
    try:
        response = client.post("/v1/batch", json=batch, headers=basic())
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.json()["success"] is False and "retry" in response.json()["error"]
    assert read_log(log) == []
    retried = client.post("/v1/batch", json=batch, headers=basic())
    assert retried.status_code == 200
    assert sorted(Event.from_json(r.value).event_id for r in read_log(log)) == ["m-1", "m-2"]


def test_1_1_browser_keeps_one_partition_before_and_after_identify(
    client: TestClient, log: EmbeddedLog, basic: Basic, read_log: ReadLog,
    settings: IngestSettings,
) -> None:
    batch = [TRACK, {"type": "identify", "anonymousId": "anon-1", "userId": "u-9"},
             {**TRACK, "userId": "u-9"}, {"type": "track", "event": "E", "userId": "u-9"}]
    assert client.post("/v1/batch", json={"batch": batch}, headers=basic()).status_code == 200
    records = read_log(log)
    keys = sorted(r.key for r in records)
    assert keys == [b"anon-1", b"anon-1", b"anon-1", b"user_id:u-9"]
    for record in records:
        assert record.partition == partition_for(record.key, settings.partitions)


def test_1_1_empty_batch_is_accepted(client: TestClient, basic: Basic) -> None:
    response = client.post("/v1/batch", json={"batch": []}, headers=basic())
    assert (response.status_code, response.json()) == (200, {"success": True})


def test_1_1_browser_preflight_and_cors(client: TestClient, basic: Basic) -> None:
    preflight = client.options("/v1/t", headers={"Origin": "https://shop.example",
                                                 "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    response = client.post("/v1/t", content=orjson.dumps(TRACK),
                           headers={**basic(), "Origin": "https://shop.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_settings_write_keys_and_origins_are_comma_separated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JOURNEY_WRITE_KEYS", "k1, k2,,")
    monkeypatch.setenv("JOURNEY_CORS_ORIGINS", "https://a.example,https://b.example")
    built = IngestSettings()
    assert [k.get_secret_value() for k in built.write_keys] == ["k1", "k2"]
    assert built.cors_origins == ["https://a.example", "https://b.example"]
    assert "k1" not in repr(built)
    for name, info in IngestSettings.model_fields.items():
        assert info.description, name


def test_1_3_event_nested_too_deeply_is_rejected_not_a_5xx(
    client: TestClient, log: EmbeddedLog, basic: Basic, read_log: ReadLog,
    settings: IngestSettings,
) -> None:
    deep = b'{"a":' * 600 + b"1" + b"}" * 600
    item = b'{"type":"track","event":"E","userId":"u1","properties":' + deep + b"}"
    body = b'{"batch":[' + orjson.dumps(TRACK) + b"," + item + b"]}"
    response = client.post("/v1/batch", content=body, headers=basic())
    assert response.status_code == 200, response.text
    assert response.json()["rejected"][0]["index"] == 1
    assert "nested too deeply" in response.json()["rejected"][0]["reason"]
    assert len(read_log(log)) == 1
    [letter] = list_dead_letters(settings.data_dir / "deadletter", 10)
    assert letter.index == 1 and letter.event == "<nested too deeply to store>"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=6)
    | st.sampled_from(["track", "page", "identify", "alias", "2024-05-01T00:00:00Z", "-1"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["type", "event", "userId", "anonymousId", "context", "properties",
                         "traits", "timestamp", "sentAt", "batch", "messageId", "page", "url"]),
        inner, max_size=4),
    max_leaves=12,
)


@hypothesis_settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=JSON, endpoint=st.sampled_from(["/v1/batch", "/v1/t", "/v1/identify"]))
def test_1_3_never_a_5xx_for_any_json(
    client: TestClient, basic: Basic, body: Any, endpoint: str
) -> None:
    response = client.post(endpoint, content=orjson.dumps(body), headers=basic())
    assert response.status_code < 500, response.text
    assert isinstance(response.json()["success"], bool)

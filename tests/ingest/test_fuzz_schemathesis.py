"""SPEC 1.3 under fuzzing: schemathesis cases from the collector's OpenAPI (given a body schema of
Segment messages) and hypothesis-made garbage never get a 5xx, always get a JSON answer, and a
request the collector did not answer 200 leaves the log unchanged (a 200 stores exactly the
events it did not reject)."""

from __future__ import annotations

import base64
import copy
import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from schemathesis.generation import GenerationMode
from schemathesis.schemas import BaseSchema

from ingest.app import create_app
from ingest.routes import ENDPOINTS
from ingest.settings import IngestSettings
from journey.log.embedded import EmbeddedLog

WRITE_KEY = "wk-fuzz"
AUTH = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
SINGLE = sorted(name for name, kind in ENDPOINTS.items() if kind)
BATCH = sorted(name for name, kind in ENDPOINTS.items() if kind is None)
FUZZ = settings(
    max_examples=250, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
)

# The Segment message as the tracking API documents it: what schemathesis builds bodies from
# (positive cases) and breaks on purpose (negative cases: wrong types, missing ids, ...).
MESSAGE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": {"enum": ["track", "page", "screen", "identify", "group", "alias"]},
        "event": {"type": "string"}, "name": {"type": "string"},
        "messageId": {"type": "string", "maxLength": 100},
        "userId": {"type": "string"}, "anonymousId": {"type": "string"},
        "groupId": {"type": "string"}, "previousId": {"type": "string"},
        "channel": {"type": "string"},
        "timestamp": {"type": "string", "format": "date-time"},
        "sentAt": {"type": "string", "format": "date-time"},
        "originalTimestamp": {"type": "string", "format": "date-time"},
        "properties": {"type": "object"}, "traits": {"type": "object"},
        "context": {"type": "object"}, "integrations": {"type": "object"},
    },
    "anyOf": [{"required": ["userId"]}, {"required": ["anonymousId"]}],
}
BATCH_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {"batch": {"type": "array", "items": MESSAGE, "maxItems": 20},
                   "context": {"type": "object"}, "writeKey": {"type": "string"}},
    "required": ["batch"],
}


@dataclass
class Collector:
    """The collector app on the real embedded log in a temp dir."""

    app: Any
    log: EmbeddedLog
    client: TestClient

    def logged(self) -> int:
        """Records in the log so far."""
        return sum(self.log.end_offsets().values())


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    data_dir = tmp_path_factory.mktemp("fuzz")
    config = IngestSettings(data_dir=data_dir, write_keys=[SecretStr(WRITE_KEY)], partitions=2,
                            max_request_bytes=64 * 1024, max_event_bytes=4 * 1024)
    log = EmbeddedLog(config.log_dir, config.partitions)
    app = create_app(config, log)
    with TestClient(app, raise_server_exceptions=True) as client:
        yield Collector(app, log, client)
    log.close()


@pytest.fixture(scope="module")
def api_schema(collector: Collector) -> BaseSchema:
    """The collector's own OpenAPI document, each Segment POST given the body it accepts."""
    raw = copy.deepcopy(collector.app.openapi())
    for name in SINGLE + BATCH:  # the native endpoints keep the schema they declare
        body = BATCH_BODY if name in BATCH else MESSAGE
        raw["paths"][f"/v1/{name}"]["post"]["requestBody"] = {
            "required": True, "content": {"application/json": {"schema": body}}}
    schema = schemathesis.openapi.from_dict(raw)
    schema.app = collector.app
    return schema


def check(collector: Collector, path: str, before: int, status: int, answer: Any,
          items: int | None) -> None:
    """No 5xx; 4xx only with a JSON error and nothing stored; a 200 stores what it accepted."""
    stored = collector.logged() - before
    event(f"status {status}, stored {'some' if stored else 'none'}")  # --hypothesis-show-statistics
    assert status < 500, answer
    assert isinstance(answer, dict), answer
    if status != 200:
        assert 400 <= status < 500, answer
        # Segment endpoints answer {"error": "..."}; FastAPI's own 422 says {"detail": [...]}.
        named = answer.get("error") if path.rsplit("/", 1)[-1] in ENDPOINTS else (
            answer.get("error") or answer.get("detail"))
        assert named and isinstance(named, str | list), answer
        assert stored == 0, f"{status} answered but {stored} records were stored: {answer}"
    elif items is not None:
        assert stored == items - len(answer.get("rejected", [])), answer


@FUZZ
@given(data=st.data())
def test_1_3_schemathesis_cases_never_5xx_and_rejections_store_nothing(
    data: st.DataObject, collector: Collector, api_schema: BaseSchema,
) -> None:
    mode = data.draw(st.sampled_from([GenerationMode.POSITIVE, GenerationMode.NEGATIVE]))
    case = data.draw(api_schema.as_strategy(generation_mode=mode))
    before = collector.logged()
    response = case.call(headers={"Authorization": AUTH})
    try:
        answer = response.json()
    except ValueError:
        pytest.fail(f"not JSON ({response.status_code}): {response.text[:300]}")
    body = case.body if isinstance(case.body, dict) else None
    items = None
    if body is not None and case.path.rsplit("/", 1)[-1] in SINGLE:
        items = 1
    check(collector, case.path, before, response.status_code, answer, items)


# Garbage that no schema describes: a message with one known field of the wrong type, bodies
# that are not JSON, over the limits, nested too deeply, badly compressed, or wrongly signed.
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12,
)
KNOWN_FIELDS = ["type", "event", "userId", "anonymousId", "messageId", "timestamp", "sentAt",
                "originalTimestamp", "properties", "traits", "context", "previousId", "groupId",
                "channel", "batch", "integrations", "writeKey"]


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    """A track message, maybe with one field replaced by any JSON value, maybe huge."""
    message: dict[str, Any] = {"type": "track", "event": "Fuzzed", "userId": "fuzz-user",
                               "messageId": draw(st.uuids()).hex}
    if draw(st.booleans()):
        message[draw(st.sampled_from(KNOWN_FIELDS))] = draw(JSON_VALUES)
    if draw(st.integers(0, 9)) == 0:
        message["properties"] = {"blob": "x" * 5000}  # over max_event_bytes
    return message


def nested(depth: int) -> bytes:
    return b'{"batch": [{"userId": "deep", "properties": {"p": ' + b"[" * depth + b"]" * depth \
        + b"}}]}"


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, dict[str, str], bytes, int | None]:
    """(path, headers, body, number of messages when the body is a well-formed JSON object)."""
    name = draw(st.sampled_from(SINGLE + BATCH))
    headers = {"Content-Type": draw(st.sampled_from(
        ["application/json", "text/plain", "application/x-www-form-urlencoded", "image/png"]))}
    # Mostly well signed and plainly encoded, so that the body itself gets past the door.
    auth = draw(st.sampled_from(["good"] * 6 + ["none", "wrong", "garbage", "body"]))
    items: int | None = None
    obj: dict[str, Any] | None = None
    kind = draw(st.sampled_from(["messages", "bytes", "text", "huge", "deep", "any"]))
    if kind == "messages":
        batch = draw(st.lists(messages(), min_size=1, max_size=5))
        obj = {"batch": batch} if name in BATCH else batch[0]
        items = len(batch) if name in BATCH else 1
    elif kind == "any":
        obj = {"batch": draw(JSON_VALUES)} if name in BATCH else draw(
            st.dictionaries(st.sampled_from(KNOWN_FIELDS), JSON_VALUES, max_size=5))
    if obj is not None and auth == "body":
        obj["writeKey"] = WRITE_KEY
    raw = {
        "bytes": lambda: draw(st.binary(max_size=200)),
        "text": lambda: draw(st.text(max_size=200)).encode(),
        "huge": lambda: b'{"batch": [], "pad": "' + b"y" * 70_000 + b'"}',
        "deep": lambda: nested(draw(st.sampled_from([10, 900, 5_000, 30_000]))),
    }.get(kind, lambda: json.dumps(obj).encode())()
    encoding = draw(st.sampled_from(
        ["identity"] * 5 + ["gzip", "gzip", "bad-gzip", "truncated-gzip", "br"]))
    if encoding != "identity":
        headers["Content-Encoding"] = "gzip" if "gzip" in encoding else encoding
        raw = {"gzip": gzip.compress(raw), "bad-gzip": raw,
               "truncated-gzip": gzip.compress(raw)[:-9]}.get(encoding, raw)
        items = items if encoding == "gzip" else None
    headers.update({
        "good": {"Authorization": AUTH}, "none": {}, "body": {},
        "wrong": {"Authorization": "Basic " + base64.b64encode(b"not-a-key:").decode()},
        "garbage": {"Authorization": draw(st.sampled_from(["Bearer x", "Basic !!!", "Basic"]))},
    }[auth])
    return f"/v1/{name}", headers, raw, items


@FUZZ
@given(request=requests())
def test_1_3_garbage_never_5xx_and_rejections_store_nothing(
    request: tuple[str, dict[str, str], bytes, int | None], collector: Collector,
) -> None:
    path, headers, raw, items = request
    before = collector.logged()
    response = collector.client.post(path, content=raw, headers=headers)
    try:
        answer = response.json()
    except ValueError:
        pytest.fail(f"not JSON ({response.status_code}): {response.text[:300]}")
    check(collector, path, before, response.status_code, answer, items)

"""SPEC 6.1 write keys as `KEY:CHANNEL` and SPEC 1.2's channel precedence; Segment's /v1/import."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from ingest.app import create_app
from ingest.settings import IngestSettings
from journey.errors import ConfigError
from journey.log.base import Record
from journey.log.embedded import EmbeddedLog
from journey.schema import Event

Basic = Callable[..., dict[str, str]]
ReadLog = Callable[[EmbeddedLog], list[Record]]
BACKEND = "wk-backend-42"


@pytest.fixture
def keyed(tmp_path: Path, write_key: str,
          received: Any) -> Iterator[tuple[TestClient, EmbeddedLog]]:
    settings = IngestSettings(data_dir=tmp_path, partitions=2,
                              write_keys=[SecretStr(write_key), SecretStr(f"{BACKEND}:store")])
    log = EmbeddedLog(settings.log_dir, settings.partitions, busy_timeout_s=0.2)
    with TestClient(create_app(settings, log, lambda: received)) as client:
        yield client, log
    log.close()


def channels(log: EmbeddedLog, read_log: ReadLog) -> dict[str, str]:
    return {(e := Event.from_json(r.value)).event_id: e.channel for r in read_log(log)}


def message(mid: str, kind: str = "track", **extra: Any) -> dict[str, Any]:
    return {"type": kind, "messageId": mid, "userId": "u1", "event": "Order Completed", **extra}


def test_6_1_key_channel_is_the_default_below_explicit_channels(
    keyed: tuple[TestClient, EmbeddedLog], basic: Basic, read_log: ReadLog,
) -> None:
    client, log = keyed
    batch = [
        message("plain"),  # the key's default channel
        message("page", kind="page"),  # the key's default wins over page -> web
        message("explicit", properties={"channel": "email"}),
        message("context", context={"channel": "call"}),
        message("browser", channel="browser"),  # Segment's top-level channel maps first
        message("bogus", channel="fax"),  # not a channel: falls through to the key's
    ]
    answer = client.post("/v1/batch", json={"batch": batch}, headers=basic(BACKEND))
    assert answer.status_code == 200, answer.text
    assert channels(log, read_log) == {"plain": "store", "page": "store", "explicit": "email",
                                       "context": "call", "browser": "web", "bogus": "store"}


def test_6_1_a_key_without_channel_keeps_the_type_defaults(
    keyed: tuple[TestClient, EmbeddedLog], basic: Basic, read_log: ReadLog, write_key: str,
) -> None:
    client, log = keyed
    batch = [message("t1"), message("p1", kind="page"), message("s1", kind="screen")]
    assert client.post("/v1/batch", json={"batch": batch}, headers=basic(write_key)).is_success
    assert channels(log, read_log) == {"t1": "other", "p1": "web", "s1": "app"}


def test_6_1_the_channel_suffix_is_not_part_of_the_key(
    keyed: tuple[TestClient, EmbeddedLog], basic: Basic,
) -> None:
    client, _ = keyed
    body = {"batch": [message("x")]}
    assert client.post("/v1/batch", json=body, headers=basic(f"{BACKEND}:store")).status_code == 200
    assert client.post("/v1/batch", json={**body, "writeKey": BACKEND}).status_code == 200
    refused = client.post("/v1/batch", json={**body, "writeKey": f"{BACKEND}:store"})
    assert refused.status_code == 401


def test_6_1_an_unknown_channel_suffix_is_a_config_error(tmp_path: Path) -> None:
    settings = IngestSettings(data_dir=tmp_path, write_keys=[SecretStr("key:fax")])
    log = EmbeddedLog(settings.log_dir, 1, busy_timeout_s=0.2)
    try:
        with pytest.raises(ConfigError, match="not a channel"):
            create_app(settings, log)
    finally:
        log.close()


def test_1_1_segment_import_endpoint_takes_a_batch_body(
    keyed: tuple[TestClient, EmbeddedLog], basic: Basic, read_log: ReadLog, write_key: str,
) -> None:
    client, log = keyed
    body = {"batch": [message("i1"), {"type": "identify", "messageId": "i2", "userId": "u2",
                                      "traits": {"email": "A@B.example"}}],
            "context": {"channel": "app"}}
    answer = client.post("/v1/import", json=body, headers=basic(write_key))
    assert answer.status_code == 200, answer.text
    assert channels(log, read_log) == {"i1": "app", "i2": "app"}

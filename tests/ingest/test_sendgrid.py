"""SPEC 1.1 email webhook: SendGrid's Event Webhook -> canonical email events, signed or keyed."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from pydantic import SecretStr

from ingest.app import create_app
from ingest.sendgrid import event_name, to_message
from ingest.settings import IngestSettings
from journey.log.base import Record
from journey.log.embedded import EmbeddedLog
from journey.schema import Event, IdentityKey

ReadLog = Callable[[EmbeddedLog], list[Record]]
T = 1714550400  # 2024-05-01T08:00:00Z
WEBHOOK = [
    {"email": "Ann@Example.com", "timestamp": T, "event": "delivered", "sg_event_id": "ev-del",
     "sg_message_id": "m1.filter", "category": ["spring-sale", "newsletter"]},
    {"email": "ann@example.com", "timestamp": T + 60, "event": "open", "sg_event_id": "ev-open",
     "sg_message_id": "m1.filter", "useragent": "Mozilla"},
    {"email": "ann@example.com", "timestamp": T + 90, "event": "click", "sg_event_id": "ev-clk",
     "url": "https://shop.example/p?utm_source=newsletter&utm_medium=email&utm_campaign=spring"},
    {"email": "bob@example.com", "timestamp": T + 5, "event": "bounce", "sg_event_id": "ev-b",
     "reason": "550 no such user", "type": "bounce"},
    {"email": "bob@example.com", "timestamp": T + 9, "event": "group_unsubscribe",
     "sg_event_id": "ev-u", "asm_group_id": 7},
]


def stored(log: EmbeddedLog, read_log: ReadLog) -> dict[str, Event]:
    return {e.event_id: e for e in (Event.from_json(r.value) for r in read_log(log))}


def test_1_1_sendgrid_events_become_email_events_keyed_by_email(
    client: TestClient, log: EmbeddedLog, read_log: ReadLog, write_key: str,
) -> None:
    response = client.post(f"/v1/webhooks/sendgrid?key={write_key}", json=WEBHOOK)
    assert response.status_code == 200, response.text
    events = stored(log, read_log)
    assert {k: e.event for k, e in events.items()} == {
        "sg-ev-del": "Email Delivered", "sg-ev-open": "Email Opened", "sg-ev-clk": "Email Clicked",
        "sg-ev-b": "Email Bounced", "sg-ev-u": "Email Unsubscribed"}
    assert {e.channel for e in events.values()} == {"email"}
    delivered = events["sg-ev-del"]
    assert delivered.keys == (IdentityKey(type="email", value="ann@example.com"),)
    assert delivered.timestamp == datetime.fromtimestamp(T, UTC)
    assert delivered.campaign == ("sendgrid", "email", "spring-sale")
    assert events["sg-ev-clk"].campaign == ("newsletter", "email", "spring")
    assert events["sg-ev-open"].campaign == (None, None, None)
    assert (events["sg-ev-open"].source, events["sg-ev-open"].medium) == ("email", "(none)")
    assert events["sg-ev-b"].properties["reason"] == "550 no such user"
    assert events["sg-ev-u"].properties["asm_group_id"] == 7


def test_1_2_a_resent_webhook_repeats_the_same_event_ids(
    client: TestClient, log: EmbeddedLog, read_log: ReadLog, basic: Callable[..., dict[str, str]],
) -> None:
    no_id = [{"email": "c@example.com", "timestamp": T, "event": "processed"}]
    for _ in range(2):
        response = client.post("/v1/webhooks/sendgrid", json=WEBHOOK + no_id, headers=basic())
        assert response.status_code == 200
    ids = [Event.from_json(r.value).event_id for r in read_log(log)]
    assert len(ids) == 12 and len(set(ids)) == 6


def test_1_3_bad_items_are_named_by_index_and_the_rest_stored(
    client: TestClient, log: EmbeddedLog, read_log: ReadLog, write_key: str,
) -> None:
    body = [WEBHOOK[0], {"timestamp": T, "event": "open"}, {"email": "x@y.z", "event": "open",
                                                            "timestamp": "yesterday"}]
    response = client.post(f"/v1/webhooks/sendgrid?key={write_key}", json=body)
    assert response.status_code == 200
    assert [r["index"] for r in response.json()["rejected"]] == [1, 2]
    assert list(stored(log, read_log)) == ["sg-ev-del"]
    everything_bad = client.post(f"/v1/webhooks/sendgrid?key={write_key}", json=body[1:])
    assert everything_bad.status_code == 400


@pytest.mark.parametrize("query", ["", "?key=not-a-key"])
def test_1_3_unsigned_webhook_without_a_write_key_is_401(client: TestClient, query: str) -> None:
    response = client.post(f"/v1/webhooks/sendgrid{query}", json=WEBHOOK)
    assert response.status_code == 401
    assert response.json()["success"] is False


@pytest.fixture
def signer(tmp_path: Path, log: EmbeddedLog, write_key: str) -> Iterator[
        tuple[TestClient, ec.EllipticCurvePrivateKey]]:
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    settings = IngestSettings(data_dir=tmp_path, write_keys=[SecretStr(write_key)],
                              sendgrid_public_key=SecretStr(base64.b64encode(der).decode()))
    with TestClient(create_app(settings, log)) as client:
        yield client, private


def signed(private: ec.EllipticCurvePrivateKey, body: bytes, stamp: str = "1714550400") -> dict[
        str, str]:
    signature = private.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp, "Content-Type": "application/json"}


def test_1_1_signed_webhook_is_verified_with_the_public_key(
    signer: tuple[TestClient, ec.EllipticCurvePrivateKey], log: EmbeddedLog, read_log: ReadLog,
    write_key: str,
) -> None:
    client, private = signer
    body = orjson.dumps(WEBHOOK)
    ok = client.post("/v1/webhooks/sendgrid", content=body, headers=signed(private, body))
    assert ok.status_code == 200, ok.text
    assert len(read_log(log)) == len(WEBHOOK)
    tampered = body.replace(b"ann@", b"eve@")
    refused: list[tuple[bytes, dict[str, str]]] = [
        (tampered, signed(private, body)),
        (body, {**signed(private, body), "X-Twilio-Email-Event-Webhook-Timestamp": "1714550401"}),
        (body, {}),
    ]
    for content, headers in refused:
        answer = client.post(f"/v1/webhooks/sendgrid?key={write_key}", content=content,
                             headers=headers)
        assert answer.status_code == 401, answer.text
    assert len(read_log(log)) == len(WEBHOOK)


@pytest.mark.parametrize(("kind", "name"), [
    ("processed", "Email Sent"), ("dropped", "Email Dropped"), ("deferred", "Email Deferred"),
    ("spamreport", "Email Marked as Spam"), ("unsubscribe", "Email Unsubscribed"),
    ("machine_opened", "Email Machine Opened"),
])
def test_1_1_every_sendgrid_event_type_has_an_email_event_name(kind: str, name: str) -> None:
    assert event_name(kind) == name
    message: dict[str, Any] = to_message({"email": "a@b.c", "event": kind, "timestamp": T})
    assert message["event"] == name and message["properties"]["channel"] == "email"

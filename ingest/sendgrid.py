"""SendGrid Event Webhook -> Segment-like messages on channel `email` (pure; no clock, no I/O).

SendGrid posts a JSON array of events ({email, timestamp (unix s), event, sg_event_id, ...}).
Each becomes a `track` message whose messageId comes from sg_event_id, so a resent webhook is
deduplicated downstream. Signed webhooks are checked with ECDSA P-256 over timestamp + body.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

from ingest.errors import AuthError, InvalidEventError, MalformedBodyError

EVENT_NAMES: dict[str, str] = {
    "processed": "Email Sent",
    "delivered": "Email Delivered",
    "open": "Email Opened",
    "click": "Email Clicked",
    "bounce": "Email Bounced",
    "blocked": "Email Bounced",
    "dropped": "Email Dropped",
    "deferred": "Email Deferred",
    "spamreport": "Email Marked as Spam",
    "unsubscribe": "Email Unsubscribed",
    "group_unsubscribe": "Email Unsubscribed",
    "group_resubscribe": "Email Resubscribed",
}
# Fields that become the message's own fields rather than properties.
_OWN_FIELDS = ("email", "timestamp", "event")


def event_name(kind: str) -> str:
    """`Email <Kind>` for SendGrid event types without a fixed name (SendGrid adds new ones)."""
    return EVENT_NAMES.get(kind, "Email " + kind.replace("_", " ").strip().title())


def parse_events(body: bytes) -> list[Any]:
    """The JSON array SendGrid posts; anything else is a malformed body."""
    try:
        items = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedBodyError(f"malformed JSON: {exc}") from exc
    if isinstance(items, dict):
        items = [items]  # a single event, as some test tools send
    if not isinstance(items, list):
        raise MalformedBodyError("a SendGrid webhook body is a JSON array of events")
    return items


def message_id(item: Mapping[str, Any]) -> str:
    """sg_event_id when present, else a hash of the event's content: stable across resends."""
    given = item.get("sg_event_id")
    if isinstance(given, str) and given.strip() and len(given.strip()) <= 90:
        return "sg-" + given.strip()
    digest = hashlib.sha256(orjson.dumps(item, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return "sg-h" + digest[:40]


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidEventError("timestamp must be a unix time in seconds", field="timestamp")
    try:
        when = datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise InvalidEventError("timestamp is out of range", field="timestamp") from exc
    return when.isoformat().replace("+00:00", "Z")


def _campaign(item: Mapping[str, Any]) -> dict[str, str] | None:
    """utm_* of a clicked link, else the marketing campaign name, else the (first) category."""
    url = item.get("url")
    if isinstance(url, str) and "utm_" in url:
        try:
            query = parse_qs(urlsplit(url).query)
        except ValueError:
            query = {}
        found = {name: query[f"utm_{name}"][0] for name in ("source", "medium", "campaign")
                 if query.get(f"utm_{name}")}
        if found:
            return {"source": found.get("source", "sendgrid"),
                    "medium": found.get("medium", "email"), "name": found.get("campaign", "")}
    name = item.get("marketing_campaign_name")
    category = item.get("category")
    if not (isinstance(name, str) and name.strip()):
        name = category[0] if isinstance(category, list) and category else category
    if isinstance(name, str) and name.strip():
        return {"source": "sendgrid", "medium": "email", "name": name.strip()}
    return None


def to_message(item: Any) -> dict[str, Any]:
    """The Segment-like `track` message of one SendGrid event; InvalidEventError if unusable."""
    if not isinstance(item, Mapping):
        raise InvalidEventError("each SendGrid event must be a JSON object")
    kind = item.get("event")
    if not isinstance(kind, str) or not kind.strip():
        raise InvalidEventError("SendGrid event has no `event` type", field="event")
    email = item.get("email")
    if not isinstance(email, str) or not email.strip():
        raise InvalidEventError("SendGrid event has no `email`", field="email")
    properties = {k: v for k, v in item.items() if k not in _OWN_FIELDS}
    properties.update({"channel": "email", "sendgrid_event": kind.strip()})
    context: dict[str, Any] = {"traits": {"email": email}, "channel": "email",
                               "integration": {"name": "sendgrid"}}
    if (campaign := _campaign(item)) is not None:
        context["campaign"] = campaign
    message: dict[str, Any] = {
        "type": "track", "event": event_name(kind.strip().lower()),
        "messageId": message_id(item), "properties": properties, "context": context,
    }
    if (stamp := _iso(item.get("timestamp"))) is not None:
        message["timestamp"] = stamp
    return message


def load_public_key(text: str) -> ec.EllipticCurvePublicKey:
    """SendGrid's verification key as shown in its settings (base64 DER), or PEM."""
    try:
        if "BEGIN PUBLIC KEY" in text:
            key = load_pem_public_key(text.encode())
        else:
            key = load_der_public_key(base64.b64decode("".join(text.split())))
    except (ValueError, binascii.Error) as exc:
        raise AuthError(f"the SendGrid public key cannot be read: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise AuthError("the SendGrid public key is not an elliptic-curve key")
    return key


def verify_signature(key: ec.EllipticCurvePublicKey, signature: str | None,
                     timestamp: str | None, body: bytes) -> None:
    """Raise AuthError unless `signature` is SendGrid's ECDSA signature of timestamp + body."""
    if not signature or not timestamp:
        raise AuthError("missing X-Twilio-Email-Event-Webhook-Signature or -Timestamp header")
    try:
        der = base64.b64decode(signature.strip(), validate=True)
        key.verify(der, timestamp.strip().encode() + body, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, InvalidSignature) as exc:
        raise AuthError("the SendGrid webhook signature does not verify") from exc

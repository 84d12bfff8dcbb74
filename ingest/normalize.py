"""One Segment message + the collector's receive time -> one canonical Event (SPEC 1.2, 2.1).

Pure: no clock, no I/O. Every way a message can be unusable raises InvalidEventError.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from ingest.errors import InvalidEventError
from ingest.identity import extract_keys, id_text, mapping_at
from journey.keys import is_blocked
from journey.schema import CHANNELS, Channel, Event, InvalidCanonicalEvent

EVENT_NAMES: dict[str, str] = {
    "page": "Page Viewed", "screen": "Screen Viewed", "identify": "Identified",
    "alias": "Aliased", "group": "Grouped",
}
_SEGMENT_CHANNELS = {"browser": "web", "mobile": "app"}
_TYPE_CHANNELS = {"page": "web", "screen": "app"}
_MAX_MESSAGE_ID = 100


def normalize(message: Mapping[str, Any], received_at: datetime,
              future_tolerance_s: float = 86400.0, key_channel: str | None = None) -> Event:
    """The canonical event of one Segment message received at `received_at` (aware, UTC).

    `key_channel` is the default channel of the write key the message came with (SPEC 6.1).
    """
    kind = message.get("type")
    if kind not in ("track", *EVENT_NAMES):
        raise InvalidEventError("type must be one of track, page, screen, identify, alias, group",
                                field="type")
    event_id = _event_id(message.get("messageId"))
    context = dict(mapping_at(message, "context", "context"))
    properties = dict(mapping_at(message, "properties", "properties"))
    traits = dict(mapping_at(message, "traits", "traits"))
    if kind in ("page", "screen") and isinstance(message.get("name"), str):
        properties.setdefault("name", message["name"])  # analytics.js puts it there too
    if kind == "group":
        # Group traits describe the group, not the customer: keep them out of the user's traits.
        properties.setdefault("group_id", id_text(message.get("groupId"), "groupId"))
        properties.setdefault("group_traits", traits)
        traits = {}
    keys = extract_keys(message, traits)
    if not keys:
        raise InvalidEventError("no identity key: userId, anonymousId, email, phone and "
                                "context.externalIds are all missing or blocked", event_id=event_id)
    timestamp, flagged = event_time(message, received_at, future_tolerance_s)
    channel = _channel(message, properties, context, kind, key_channel)
    page_url = _page_url(context, properties, kind)
    campaign = _campaign(context)
    source, medium = _source_medium(campaign, channel, context, page_url)
    try:
        return Event.build(dict(
            event_id=event_id, type=kind, event=_event_name(message, kind), channel=channel,
            timestamp=timestamp, received_at=received_at, timestamp_flagged=flagged, keys=keys,
            previous_id=_previous_id(message) if kind == "alias" else None,
            properties=properties, traits=traits, context=context,
            campaign_source=campaign[0], campaign_medium=campaign[1], campaign_name=campaign[2],
            source=source, medium=medium, page_url=page_url,
        ))
    except InvalidCanonicalEvent as exc:
        raise InvalidEventError(f"{exc.field}: {exc}", event_id=event_id, field=exc.field) from exc


def _event_id(value: Any) -> str:
    if value is None:
        return str(uuid.uuid4())
    text = id_text(value, "messageId")
    if not text:
        return str(uuid.uuid4())
    if len(text) > _MAX_MESSAGE_ID:
        raise InvalidEventError(f"messageId is longer than {_MAX_MESSAGE_ID} chars",
                                field="messageId")
    return text


def _event_name(message: Mapping[str, Any], kind: str) -> str:
    if kind != "track":
        return EVENT_NAMES[kind]
    name = message.get("event")
    if not isinstance(name, str) or not name.strip():
        raise InvalidEventError("track needs a non-empty string `event`", field="event")
    return name.strip()


def _previous_id(message: Mapping[str, Any]) -> str | None:
    text = id_text(message.get("previousId"), "previousId")
    return None if text is None or is_blocked(text) else text


def parse_time(value: Any, where: str) -> datetime | None:
    """An ISO-8601 time as aware UTC; naive times are taken as UTC; junk rejects the event."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidEventError(f"{where} must be an ISO-8601 string", field=where)
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise InvalidEventError(f"{where} is not an ISO-8601 time: {value[:40]!r}",
                                field=where) from exc
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:
        raise InvalidEventError(f"{where} is out of range", field=where) from exc


def event_time(message: Mapping[str, Any], received_at: datetime,
               future_tolerance_s: float) -> tuple[datetime, bool]:
    """SPEC 1.2 timestamp rule: skew-corrected when possible; clamped and flagged if too late."""
    sent_at = parse_time(message.get("sentAt"), "sentAt")
    original = parse_time(message.get("originalTimestamp"), "originalTimestamp")
    stamp = parse_time(message.get("timestamp"), "timestamp")
    try:
        if sent_at is not None and original is not None:
            # The device clock may be wrong, but its difference between two readings is not.
            when = received_at - (sent_at - original)
        else:
            when = stamp or original or received_at
        if when - received_at > timedelta(seconds=future_tolerance_s):
            return received_at, True
        return when.astimezone(UTC), False
    except OverflowError as exc:
        raise InvalidEventError("event time is out of range", field="timestamp") from exc


def _valid_channel(value: Any) -> str | None:
    if isinstance(value, str) and value.strip().lower() in CHANNELS:
        return value.strip().lower()
    return None


def _channel(message: Mapping[str, Any], properties: Mapping[str, Any],
             context: Mapping[str, Any], kind: str, key_channel: str | None) -> Channel:
    return cast(Channel, _channel_name(message, properties, context, kind, key_channel))


def _channel_name(message: Mapping[str, Any], properties: Mapping[str, Any],
                  context: Mapping[str, Any], kind: str, key_channel: str | None) -> str:
    for value in (properties.get("channel"), context.get("channel"), message.get("channel")):
        if (channel := _valid_channel(value)) is not None:
            return channel
    top = message.get("channel")
    if isinstance(top, str) and top.strip().lower() in _SEGMENT_CHANNELS:
        return _SEGMENT_CHANNELS[top.strip().lower()]
    if key_channel is not None:
        return key_channel
    return _TYPE_CHANNELS.get(kind, "other")


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _page_url(context: Mapping[str, Any], properties: Mapping[str, Any], kind: str) -> str | None:
    page = context.get("page")
    url = _text(page.get("url")) if isinstance(page, Mapping) else None
    if url is None and kind == "page":
        url = _text(properties.get("url"))
    return url


def _campaign(context: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    given = context.get("campaign")
    if isinstance(given, Mapping):
        found = (_text(given.get("source")), _text(given.get("medium")), _text(given.get("name")))
        if any(found):
            return found
    page = context.get("page")
    url = page.get("url") if isinstance(page, Mapping) else None
    if not isinstance(url, str) or "utm_" not in url:
        return (None, None, None)
    try:
        query = parse_qs(urlsplit(url).query)
    except ValueError:
        return (None, None, None)
    return tuple(  # type: ignore[return-value]
        _text(query.get(name, [""])[0]) for name in ("utm_source", "utm_medium", "utm_campaign")
    )


def _host(url: object) -> str | None:
    if not url or not isinstance(url, str):  # a referrer sent as a number is no host
        return None
    try:
        return urlsplit(url.strip()).hostname or None
    except ValueError:
        return None


def _source_medium(campaign: tuple[str | None, str | None, str | None], channel: str,
                   context: Mapping[str, Any], page_url: str | None) -> tuple[str, str]:
    if campaign[0] or campaign[1]:
        return campaign[0] or "(not set)", campaign[1] or "(none)"
    if channel not in ("web", "app"):
        return channel, "(none)"
    page = context.get("page")
    referrer = _host(page.get("referrer")) if isinstance(page, Mapping) else None
    if referrer is not None and referrer != _host(page_url):
        return referrer, "referral"
    return "(direct)", "(none)"

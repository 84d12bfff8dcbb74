"""The canonical event (SPEC 1.2): the one shape shared by collector, processor and warehouse.

It is a `msgspec.Struct`: the collector validates each event once, at the boundary
(`Event.build`, with every constraint checked), and everything after that (log, processor,
warehouse) carries it compactly and decodes it from JSON in a few microseconds, checking types
but never re-running Python validators.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

EventType = Literal["track", "page", "screen", "identify", "alias", "group"]
Channel = Literal["web", "app", "email", "call", "store", "sms", "social", "chat", "other"]
CHANNELS: tuple[str, ...] = (
    "web",
    "app",
    "email",
    "call",
    "store",
    "sms",
    "social",
    "chat",
    "other",
)
SESSION_CHANNELS: frozenset[str] = frozenset({"web", "app"})

# SPEC 2.2: user_id > email > phone > custom types > anonymous_id.
BUILTIN_KEY_RANK: dict[str, int] = {"user_id": 0, "email": 1, "phone": 2, "anonymous_id": 4}
CUSTOM_KEY_RANK = 3

EventId = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
KeyType = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
UtcTime = Annotated[datetime, msgspec.Meta(tz=True)]


class InvalidCanonicalEvent(ValueError):
    """A canonical event breaks the schema; `field` is the path of the first problem."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def key_rank(key_type: str) -> tuple[int, str]:
    """Sort key of a key type: lower is higher priority; custom types tie-break by name."""
    return (BUILTIN_KEY_RANK.get(key_type, CUSTOM_KEY_RANK), key_type)


def _priority(key: IdentityKey) -> tuple[tuple[int, str], str]:
    return (key_rank(key.type), key.value)


class IdentityKey(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    """One typed identity key (SPEC 2.1), already normalised and never a blocked value."""

    type: KeyType
    value: Name


class Event(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A canonical event. `keys` is sorted by priority (SPEC 2.2), the first is the primary key."""

    event_id: EventId
    type: EventType
    event: Name
    channel: Channel
    timestamp: UtcTime
    received_at: UtcTime
    timestamp_flagged: bool = False
    keys: Annotated[tuple[IdentityKey, ...], msgspec.Meta(min_length=1)]
    previous_id: str | None = None
    properties: dict[str, Any] = msgspec.field(default_factory=dict)
    traits: dict[str, Any] = msgspec.field(default_factory=dict)
    context: dict[str, Any] = msgspec.field(default_factory=dict)
    campaign_source: str | None = None
    campaign_medium: str | None = None
    campaign_name: str | None = None
    source: str
    medium: str
    page_url: str | None = None

    def __post_init__(self) -> None:
        keys = self.keys
        if len(keys) > 1:
            # Deduplicate on (type, value) tuples, then order by priority (SPEC 2.2).
            unique: dict[tuple[str, str], IdentityKey] = {}
            for key in keys:
                unique.setdefault((key.type, key.value), key)
            ordered = tuple(sorted(unique.values(), key=_priority))
            if ordered != keys:
                msgspec.structs.force_setattr(self, "keys", ordered)

    @classmethod
    def build(cls, fields: dict[str, Any]) -> Event:
        """An event from plain fields, every constraint checked (the collector's boundary)."""
        keys = fields.get("keys")
        if isinstance(keys, list | tuple):  # keys built as structs are checked like the rest
            plain = [msgspec.structs.asdict(k) if isinstance(k, IdentityKey) else k for k in keys]
            fields = {**fields, "keys": plain}
        try:
            return msgspec.convert(fields, cls)
        except msgspec.ValidationError as exc:
            raise InvalidCanonicalEvent(str(exc), _path(str(exc))) from None

    @property
    def primary_key(self) -> IdentityKey:
        """The highest-priority key: the event belongs to this key's customer (SPEC 2.2)."""
        return self.keys[0]

    @property
    def has_campaign(self) -> bool:
        """SPEC 3: an event carries a campaign when any of source, medium, name is non-empty."""
        return bool(self.campaign_source or self.campaign_medium or self.campaign_name)

    @property
    def campaign(self) -> tuple[str | None, str | None, str | None]:
        return (self.campaign_source, self.campaign_medium, self.campaign_name)

    def order_key(self) -> tuple[datetime, str]:
        """SPEC 2.2 / 3: event time, ties broken by event_id ascending."""
        return (self.timestamp, self.event_id)

    def to_json(self) -> bytes:
        return _ENCODER.encode(self)

    @classmethod
    def from_json(cls, data: bytes | str) -> Event:
        """Decode one canonical event (types and constraints checked); ValueError if it is not."""
        try:
            return _DECODER.decode(data)
        except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
            raise InvalidCanonicalEvent(str(exc), _path(str(exc))) from None


def _path(message: str) -> str:
    """`a.b` from msgspec's "... - at `$.a.b`" (empty when the message names no path)."""
    _, found, where = message.rpartition(" - at `$")
    return where.rstrip("`").lstrip(".") if found else ""


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(Event)

"""The canonical event (SPEC 1.2): the one shape shared by collector, processor and warehouse."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

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


def key_rank(key_type: str) -> tuple[int, str]:
    """Sort key of a key type: lower is higher priority; custom types tie-break by name."""
    return (BUILTIN_KEY_RANK.get(key_type, CUSTOM_KEY_RANK), key_type)


def _priority(key: IdentityKey) -> tuple[tuple[int, str], str]:
    return (key_rank(key.type), key.value)


class IdentityKey(BaseModel):
    """One typed identity key (SPEC 2.1), already normalised and never a blocked value."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str = Field(min_length=1, max_length=64)
    value: str = Field(min_length=1, max_length=1024)


class Event(BaseModel):
    """A canonical event. `keys` is sorted by priority (SPEC 2.2), the first is the primary key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str = Field(min_length=1, max_length=100)
    type: EventType
    event: str = Field(min_length=1, max_length=1024)
    channel: Channel
    timestamp: datetime
    received_at: datetime
    timestamp_flagged: bool = False
    keys: tuple[IdentityKey, ...] = Field(min_length=1)
    previous_id: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)
    campaign_source: str | None = None
    campaign_medium: str | None = None
    campaign_name: str | None = None
    source: str
    medium: str
    page_url: str | None = None

    @field_validator("timestamp", "received_at")
    @classmethod
    def _must_be_aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("timestamps must carry a time zone (UTC)")
        return value

    @field_validator("keys")
    @classmethod
    def _sorted_by_priority(cls, keys: tuple[IdentityKey, ...]) -> tuple[IdentityKey, ...]:
        if len(keys) == 1:
            return keys
        # Deduplicate on (type, value) tuples: hashing the frozen models is several times slower.
        unique: dict[tuple[str, str], IdentityKey] = {}
        for key in keys:
            unique.setdefault((key.type, key.value), key)
        return tuple(sorted(unique.values(), key=_priority))

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
        return self.model_dump_json().encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> Event:
        return cls.model_validate_json(data)

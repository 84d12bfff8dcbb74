"""Event builders for the journey core tests: canonical events as the collector would make them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from journey.schema import Event, IdentityKey

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TYPES = {
    "Page Viewed": "page",
    "Screen Viewed": "screen",
    "Identified": "identify",
    "Aliased": "alias",
    "Grouped": "group",
}
Make = Callable[..., Event]


def make_event(
    event_id: str,
    at: float,
    event: str = "Page Viewed",
    *,
    channel: str = "web",
    user: str | None = None,
    anon: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    extra_keys: dict[str, str] | None = None,
    campaign: tuple[str | None, str | None, str | None] | None = None,
    properties: dict[str, Any] | None = None,
    traits: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
    previous_id: str | None = None,
    page_url: str | None = None,
) -> Event:
    """A canonical event `at` seconds after T0 with the given keys (at least one)."""
    keys = {
        "user_id": user,
        "anonymous_id": anon,
        "email": email,
        "phone": phone,
        **(extra_keys or {}),
    }
    source, medium = ("(direct)", "(none)") if channel in ("web", "app") else (channel, "(none)")
    if campaign is not None:
        source, medium = campaign[0] or source, campaign[1] or medium
    timestamp = T0 + timedelta(seconds=at)
    fields: dict[str, Any] = dict(
        event_id=event_id,
        type=TYPES.get(event, "track"),
        event=event,
        channel=channel,
        timestamp=timestamp,
        received_at=timestamp,
        keys=tuple(IdentityKey(type=t, value=v) for t, v in keys.items() if v is not None),
        previous_id=previous_id,
        properties=properties or {},
        traits=traits or {},
        context=context or {},
        campaign_source=campaign[0] if campaign else None,
        campaign_medium=campaign[1] if campaign else None,
        campaign_name=campaign[2] if campaign else None,
        source=source,
        medium=medium,
        page_url=page_url,
    )
    return Event.build(fields)


@pytest.fixture(scope="session")
def make() -> Make:
    """The event builder (session-scoped so hypothesis tests may use it)."""
    return make_event

"""Sessions (SPEC 3): splitting a customer's events into sessions and describing each one.

Decision the SPEC leaves open, made here once: a session's campaign is "none" until one of its
events carries one, and an event carrying campaign C in a session whose campaign is none
*differs* from it, so it starts a new session (a click on a campaign link during a direct visit
is a new visit, as in web analytics). Hence with `split_on_campaign_change` a session's campaign
is always that of its first event, or none.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from journey.schema import SESSION_CHANNELS, Event
from journey.facts import SessionRow

Campaign = tuple[str, str, str]
PAGE_TYPES = frozenset({"page", "screen"})


def _campaign(event: Event) -> Campaign | None:
    if not event.has_campaign:
        return None
    return (event.campaign_source or "", event.campaign_medium or "", event.campaign_name or "")


def split_sessions(
    events: Sequence[Event], timeout_s: float, split_on_campaign_change: bool
) -> list[list[int]]:
    """Indices of each session's events; `events` are one customer's, in (time, event_id) order.

    Sessions are returned by start (their first event's order).
    """
    timeout = timedelta(seconds=timeout_s)
    sessions: list[list[int]] = []
    current: list[int] | None = None
    current_campaign: Campaign | None = None
    previous: Event | None = None
    for i, event in enumerate(events):
        if event.channel not in SESSION_CHANNELS:
            sessions.append([i])  # a single touch
            continue
        campaign = _campaign(event)
        if (
            current is None
            or previous is None
            or event.timestamp - previous.timestamp > timeout
            or (split_on_campaign_change and campaign is not None and campaign != current_campaign)
        ):
            current = []
            current_campaign = None
            sessions.append(current)
        current.append(i)
        if current_campaign is None and campaign is not None:
            current_campaign = campaign
        previous = event
    return sessions


def session_row(
    session: str, customer: str, events: Sequence[Event], converted_models: tuple[str, ...]
) -> SessionRow:
    """Describe one session from its events (in order)."""
    first = events[0]
    last = events[-1]
    origin = next((e for e in events if e.has_campaign), first)
    landing = next((e.page_url for e in events if e.type == "page" and e.page_url), None)
    return SessionRow(
        session_id=session,
        customer_id=customer,
        channel=first.channel,
        start=first.timestamp,
        end=last.timestamp,
        duration_s=(last.timestamp - first.timestamp).total_seconds(),
        event_count=len(events),
        page_views=sum(1 for e in events if e.type in PAGE_TYPES),
        landing_page=landing,
        source=origin.source,
        medium=origin.medium,
        campaign=origin.campaign_name,
        converted_models=converted_models,
    )

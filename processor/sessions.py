"""Sessions (SPEC 3): splitting a customer's events into sessions and describing each one.

Decision the SPEC leaves open, made here once: a session's campaign is "none" until one of its
events carries one, and an event carrying campaign C in a session whose campaign is none
*differs* from it, so it starts a new session (a click on a campaign link during a direct visit
is a new visit, as in web analytics). Hence with `split_on_campaign_change` a session's campaign
is always that of its first event, or none.

A session is described by folding its events into an `OpenSession`, which keeps no event: the
batch derivation and the incremental one (processor/incremental.py) share that fold and the
split rule, so both give the same rows.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import msgspec

from journey.facts import SessionRow
from journey.schema import SESSION_CHANNELS, Channel, Event

Campaign = tuple[str, str, str]
PAGE_TYPES = frozenset({"page", "screen"})
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)


def micros(moment: datetime) -> int:
    """Microseconds since the epoch: running state keeps times as small ints, not datetimes."""
    return (moment - EPOCH) // ONE_US


def from_micros(us: int) -> datetime:
    """The UTC datetime of a microsecond count from `micros`."""
    return EPOCH + timedelta(0, 0, us)  # positional: measurably faster than microseconds=


def timeout_micros(timeout_s: float) -> int:
    """The session timeout in microseconds, rounded as `timedelta(seconds=...)` rounds it."""
    return timedelta(seconds=timeout_s) // ONE_US


def campaign_of(event: Event) -> Campaign | None:
    """The campaign an event carries (SPEC 3), or None."""
    if not event.has_campaign:
        return None
    return (event.campaign_source or "", event.campaign_medium or "", event.campaign_name or "")


def splits(
    gap_us: int,
    campaign: Campaign | None,
    current: Campaign | None,
    timeout_us: int,
    split_on_campaign_change: bool,
) -> bool:
    """True when a web/app event `gap_us` after the session's last one starts a new session."""
    if gap_us > timeout_us:
        return True
    return split_on_campaign_change and campaign is not None and campaign != current


class OpenSession(msgspec.Struct, array_like=True, gc=False):
    """A session being built: what its row and the split rule need, without its events."""

    session_id: str
    channel: Channel  # a Literal: msgspec decodes it to the one shared string
    start: int  # microseconds since the epoch
    end: int
    event_count: int
    page_views: int
    landing_page: str | None
    source: str  # source, medium, campaign: of the origin (first event with a campaign, else first)
    medium: str
    campaign: str | None
    current: Campaign | None  # the campaign of its first event carrying one: the split rule's
    converted: int = 0  # bit m set: one of its events entered model m's conversion stage


_CAMPAIGNS: dict[Campaign, Campaign] = {}
_CAMPAIGNS_KEPT = 100_000  # a bound, so that odd input cannot grow the table without end


def _shared(campaign: Campaign | None) -> Campaign | None:
    # Few distinct campaigns: one shared tuple each, so an open session holds only a pointer.
    if campaign is None:
        return None
    shared = _CAMPAIGNS.get(campaign)
    if shared is not None:
        return shared
    if len(_CAMPAIGNS) < _CAMPAIGNS_KEPT:
        _CAMPAIGNS[campaign] = campaign
    return campaign


def open_session(session_id: str, event: Event) -> OpenSession:
    """A session holding only its first event."""
    at = micros(event.timestamp)
    name = event.campaign_name
    return OpenSession(
        session_id,
        event.channel,
        at,
        at,
        1,
        1 if event.type in PAGE_TYPES else 0,
        event.page_url if event.type == "page" and event.page_url else None,
        sys.intern(event.source),
        sys.intern(event.medium),
        None if name is None else sys.intern(name),
        _shared(campaign_of(event)),
    )


def share_strings(session: OpenSession) -> None:
    """Intern a decoded session's low-cardinality strings, as `open_session` does."""
    session.source, session.medium = sys.intern(session.source), sys.intern(session.medium)
    if session.campaign is not None:
        session.campaign = sys.intern(session.campaign)
    session.current = _shared(session.current)


def add_event(session: OpenSession, event: Event, at: int) -> None:
    """Extend a session by its next event, at `at` microseconds."""
    session.end = at
    session.event_count += 1
    if event.type in PAGE_TYPES:
        session.page_views += 1
        if session.landing_page is None and event.type == "page" and event.page_url:
            session.landing_page = event.page_url
    if session.current is None and event.has_campaign:
        session.current = _shared(campaign_of(event))
        session.source, session.medium = sys.intern(event.source), sys.intern(event.medium)
        name = event.campaign_name
        session.campaign = None if name is None else sys.intern(name)


def to_row(session: OpenSession, customer: str, converted_models: tuple[str, ...]) -> SessionRow:
    """The sessions row of a session as built so far."""
    return SessionRow(
        session_id=session.session_id,
        customer_id=customer,
        channel=session.channel,
        start=from_micros(session.start),
        end=from_micros(session.end),
        duration_s=(session.end - session.start) / 1_000_000,
        event_count=session.event_count,
        page_views=session.page_views,
        landing_page=session.landing_page,
        source=session.source,
        medium=session.medium,
        campaign=session.campaign,
        converted_models=converted_models,
    )


def split_sessions(
    events: Sequence[Event], timeout_s: float, split_on_campaign_change: bool
) -> list[list[int]]:
    """Indices of each session's events; `events` are one customer's, in (time, event_id) order.

    Sessions are returned by start (their first event's order).
    """
    timeout = timeout_micros(timeout_s)
    sessions: list[list[int]] = []
    current: list[int] | None = None
    current_campaign: Campaign | None = None
    previous = 0
    for i, event in enumerate(events):
        if event.channel not in SESSION_CHANNELS:
            sessions.append([i])  # a single touch
            continue
        campaign = campaign_of(event)
        at = micros(event.timestamp)
        if current is None or splits(
            at - previous, campaign, current_campaign, timeout, split_on_campaign_change
        ):
            current = []
            current_campaign = None
            sessions.append(current)
        current.append(i)
        if current_campaign is None and campaign is not None:
            current_campaign = campaign
        previous = at
    return sessions


def session_row(
    session: str, customer: str, events: Sequence[Event], converted_models: tuple[str, ...]
) -> SessionRow:
    """Describe one session from its events (in order)."""
    built = open_session(session, events[0])
    for event in events[1:]:
        add_event(built, event, micros(event.timestamp))
    return to_row(built, customer, converted_models)

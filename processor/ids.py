"""Deterministic ids of customers and sessions: the same events always give the same ids."""

from __future__ import annotations

from hashlib import sha256


def _digest(text: str) -> str:
    return sha256(text.encode("utf-8")).hexdigest()[:20]


def customer_id(user_id: str | None, first_key_type: str, first_key_value: str) -> str:
    """Customer id: from its user_id if it has one, else from the primary key of its first event."""
    if user_id is not None:
        return "u_" + _digest(user_id)
    return "k_" + _digest(f"{first_key_type}:{first_key_value}")


def session_id(customer: str, first_event_id: str) -> str:
    """Session id: from the customer id and the session's first event_id."""
    return "s_" + _digest(customer + "\x00" + first_event_id)

"""Identity key values every service normalises alike (SPEC 2.1): blocked placeholders, email
and phone. The collector applies them to incoming keys; erasure and customer lookups apply them
to the key they are given, so both find the stored value."""

from __future__ import annotations

import re
from typing import Any

BLOCKED_VALUES: frozenset[str] = frozenset(
    {"", "null", "none", "undefined", "nan", "anonymous", "guest", "unknown", "n/a",
     "[object object]", "-1"}
)
_ZEROS_AND_DASHES = re.compile(r"^[0-]*$")
MAX_KEY_CHARS = 1024


def is_blocked(value: str) -> bool:
    """SPEC 2.1: placeholder values that must never identify a customer."""
    folded = value.strip().lower()
    return folded in BLOCKED_VALUES or _ZEROS_AND_DASHES.match(folded) is not None


def normalize_email(value: Any) -> str | None:
    """Trimmed, lower-cased email; None when not a usable string."""
    if not isinstance(value, str):
        return None
    email = value.strip().lower()
    if is_blocked(email) or len(email) > MAX_KEY_CHARS:
        return None
    return email


def normalize_phone(value: Any) -> str | None:
    """Digits only; None when nothing usable is left."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    digits = "".join(ch for ch in str(value) if ch.isascii() and ch.isdigit())
    if is_blocked(digits) or len(digits) > MAX_KEY_CHARS:
        return None
    return digits

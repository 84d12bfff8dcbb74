"""API tokens and their scopes (SPEC 6.1): `JOURNEY_API_TOKENS` entries are `TOKEN` or
`TOKEN:SCOPE+SCOPE`; a token without scopes has them all.

Shared by the API and the collector's dead-letter routes, so both read a token alike.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import SecretStr

Scope = Literal["read", "pii", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "pii", "admin")


def split_entry(entry: str) -> tuple[str, frozenset[Scope]]:
    """(token, scopes) of one configured entry; ValueError naming an unknown scope."""
    token, sep, listed = entry.strip().rpartition(":")
    if not sep:
        return entry.strip(), frozenset(SCOPES)
    names = [name.strip() for name in listed.split("+") if name.strip()]
    unknown = [name for name in names if name not in SCOPES]
    if unknown or not names or not token:
        # The message never repeats the token itself: settings errors end up in logs.
        raise ValueError(f"an API token entry has unknown scopes {unknown or [listed]}; "
                         f"write TOKEN or TOKEN:{'+'.join(SCOPES)}")
    return token, frozenset(name for name in SCOPES if name in names)


def check_entries(entries: Sequence[SecretStr]) -> list[SecretStr]:
    """The entries unchanged, once every one is well formed (a settings validator)."""
    for entry in entries:
        split_entry(entry.get_secret_value())
    return list(entries)


def token_of(entry: str) -> str:
    """The token part of an entry (what a client sends), without its scopes."""
    return split_entry(entry)[0]


@dataclass(frozen=True, slots=True)
class Grant:
    """Who called: a short name safe to log or rate-limit on, and the scopes they hold."""

    name: str
    scopes: frozenset[Scope]


class TokenSet:
    """The configured tokens, compared in constant time."""

    def __init__(self, entries: Sequence[SecretStr]) -> None:
        pairs = [split_entry(entry.get_secret_value()) for entry in entries]
        self._tokens = [(token.encode(), scopes) for token, scopes in pairs]

    def grant(self, token: str) -> Grant | None:
        """The grant of a presented token, or None when it is not configured."""
        given = token.encode()
        found: frozenset[Scope] | None = None
        # compare_digest against every token, so timing does not reveal which one matched.
        for known, scopes in self._tokens:
            if hmac.compare_digest(given, known) and found is None:
                found = scopes
        if found is None:
            return None
        return Grant("tok_" + hashlib.sha256(given).hexdigest()[:10], found)

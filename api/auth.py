"""Bearer-token check (SPEC 6.1: `Authorization: Bearer TOKEN`, tokens from JOURNEY_API_TOKENS)."""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from pydantic import SecretStr

from api.errors import UnauthorizedError


def check_bearer(authorization: str | None, tokens: Sequence[SecretStr]) -> None:
    """Raise UnauthorizedError unless the header carries one of the tokens."""
    if not authorization:
        raise UnauthorizedError("missing Authorization header; send 'Authorization: Bearer TOKEN'")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise UnauthorizedError("Authorization must be 'Bearer TOKEN'")
    # compare_digest against every token, so timing does not reveal which prefix matched.
    ok = False
    for known in tokens:
        ok |= hmac.compare_digest(token.encode(), known.get_secret_value().encode())
    if not ok:
        raise UnauthorizedError("unknown API token")

"""Bearer tokens and their scopes (SPEC 6.1: `Authorization: Bearer TOKEN`; scopes read, pii,
admin from JOURNEY_API_TOKENS entries `TOKEN:SCOPE+SCOPE`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from fastapi import Request
from pydantic import SecretStr

from api.errors import ApiError, UnauthorizedError
from journey.tokens import Grant, Scope, TokenSet


class ForbiddenError(ApiError):
    """The token is known but lacks the scope the route needs. Context: scope."""

    status = 403
    code = "forbidden"


def check_bearer(authorization: str | None, tokens: TokenSet, scope: Scope) -> Grant:
    """The caller's grant; UnauthorizedError without a known token, ForbiddenError without scope."""
    if not authorization:
        raise UnauthorizedError("missing Authorization header; send 'Authorization: Bearer TOKEN'")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise UnauthorizedError("Authorization must be 'Bearer TOKEN'")
    grant = tokens.grant(token)
    if grant is None:
        raise UnauthorizedError("unknown API token")
    if scope not in grant.scopes:
        raise ForbiddenError(f"this token lacks the {scope!r} scope this route needs",
                             scope=scope, token_scopes=sorted(grant.scopes))
    return grant


def requires(entries: Sequence[SecretStr], scope: Scope) -> Callable[[Request], None]:
    """A FastAPI dependency admitting only tokens that hold `scope`."""
    tokens = TokenSet(entries)

    def dependency(request: Request) -> None:
        check_bearer(request.headers.get("authorization"), tokens, scope)

    return dependency

"""Errors of the collector. Each carries the HTTP status it maps to and what locates it."""

from __future__ import annotations

from journey.errors import BadEventError, FatalError


class WireError(FatalError):
    """The request as a whole is unusable (SPEC 1.3); nothing of it is stored."""

    status: int = 400


class MalformedBodyError(WireError):
    """The body is not valid gzip/JSON or not the shape the endpoint expects."""


class UnsupportedEncodingError(WireError):
    """Content-Encoding names a compression the collector does not decode."""

    status = 415


class AuthError(WireError):
    """The write key is missing or not one of the configured ones."""

    status = 401


class ScopeError(WireError):
    """The API token is known but lacks the scope the route needs (SPEC 6.1)."""

    status = 403


class TooLargeError(WireError):
    """The request body or the batch is over a limit (SPEC 1.1)."""

    status = 413


class RateLimitedError(WireError):
    """The write key sent more requests than its token bucket allows; retry after a pause."""

    status = 429

    def __init__(self, message: str, retry_after_s: float, **context: object) -> None:
        super().__init__(message, retry_after_s=retry_after_s, **context)
        self.retry_after_s = retry_after_s


class InvalidEventError(BadEventError):
    """One event is rejected; the context names the field (and batch index, when known)."""


class EventTooLargeError(InvalidEventError):
    """One event is over the per-event size limit."""

"""The root of every error the product raises.

Each error is either retryable (the same call may succeed later: a broker that is down, a
full disk that gets space) or fatal (retrying cannot help: bad input, bad configuration).
The consume loop decides retry, dead-letter or crash from these types, never from a message.
"""

from __future__ import annotations


class JourneyError(Exception):
    """Root of all journey errors."""

    retryable: bool = False

    def __init__(self, message: str, **context: object) -> None:
        super().__init__(message)
        self.message = message
        self.context = context

    def __str__(self) -> str:
        if not self.context:
            return self.message
        where = ", ".join(f"{k}={v!r}" for k, v in self.context.items())
        return f"{self.message} ({where})"


class RetryableError(JourneyError):
    """The operation may succeed if retried later."""

    retryable = True


class FatalError(JourneyError):
    """Retrying cannot help; the caller must fix something."""

    retryable = False


class BadEventError(FatalError):
    """An event that breaks the canonical schema or SPEC 1.3; it goes to the dead-letter store."""


class ConfigError(FatalError):
    """Settings or a stage model file are invalid."""


class DeadLetterWriteError(RetryableError):
    """Rejected events could not be written to the dead-letter store (disk full, ...)."""

"""Errors of the event log (Kafka or embedded). Context fields locate the problem."""

from __future__ import annotations

from journey.errors import FatalError, RetryableError


class LogUnavailable(RetryableError):
    """The log could not accept or serve records now (broker down, timeout, database busy)."""


class LogRejected(FatalError):
    """The log refused the request and will refuse it again (record too large, no such topic)."""


class UnknownPartition(FatalError):
    """A partition that the topic does not have was named (seek)."""


class LogCorrupt(FatalError):
    """The embedded log's database is not a journey log or is damaged."""

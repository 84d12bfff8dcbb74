"""Errors of the event log (Kafka or embedded). Context fields locate the problem."""

from __future__ import annotations

from journey.errors import FatalError, RetryableError


class LogUnavailable(RetryableError):
    """The log could not accept or serve records now (broker down, timeout, database busy)."""


class LogNotWritable(LogUnavailable):
    """The log's disk or file is read-only (or not ours): retryable once the operator fixes it,
    and never a sign of damage."""


class LogRejected(FatalError):
    """The log refused the request and will refuse it again (record too large, no such topic)."""


class UnknownPartition(FatalError):
    """A partition that the topic does not have was named (seek)."""


class LogCorrupt(FatalError):
    """The embedded log's database is not a journey log or is damaged."""

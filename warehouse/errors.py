"""Errors of the warehouse, each carrying the file, table or bucket it concerns."""

from __future__ import annotations

from journey.errors import FatalError, RetryableError


class WarehouseLockedError(RetryableError):
    """Another writer holds the warehouse lock (fields: root, timeout_s)."""


class WarehouseIOError(RetryableError):
    """A file could not be written or read; the commit did not happen (fields: path)."""


class ManifestError(FatalError):
    """The manifest is unreadable or refers to a missing file (fields: path)."""


class CommitError(FatalError):
    """A commit request is invalid: wrong bucket, offsets going back (fields: bucket, partition)."""


class WriterStateError(FatalError):
    """The writer was used before open() or after close()."""

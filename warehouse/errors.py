"""Errors of the warehouse, each carrying the file, table or bucket it concerns."""

from __future__ import annotations

from journey.errors import FatalError, RetryableError


class WarehouseLockedError(RetryableError):
    """Another writer holds the warehouse lock (fields: root, timeout_s)."""


class WarehouseIOError(RetryableError):
    """A file could not be written or read; the commit did not happen (fields: path)."""


class WarehouseMemoryError(RetryableError):
    """DuckDB's memory limit refused the work (fields: detail); it can run again later."""


class ManifestError(FatalError):
    """The manifest is unreadable or refers to a missing file (fields: path)."""


class CommitError(FatalError):
    """A commit request is invalid: wrong bucket, offsets going back (fields: bucket, partition)."""


class CommitLockStateError(FatalError):
    """A commit lock acquired while held, or released while not held (fields: lock)."""


class WriterStateError(FatalError):
    """The writer was used before open() or after close()."""


REPAIR_COMMAND = "journey doctor --repair"
# `journey processor` exits with it on a damaged store; `journey up` then does not restart it.
DAMAGED_EXIT_STATUS = 3


class StoreDamagedError(FatalError):
    """A store is missing or damaged; nothing was deleted, and `journey doctor --repair` says
    what it can repair (fields: path, repair)."""

    def __init__(self, message: str, *, path: str, **context: object) -> None:
        super().__init__(f"{message}; stopped without deleting anything: run "
                         f"`{REPAIR_COMMAND}`", path=path, **context)
        self.path = path
        self.what = message  # what is wrong, without the advice


class CatalogMissingError(StoreDamagedError):
    """The catalog file is gone while the warehouse's data files remain: a fresh catalog would
    leave them unreferenced, and maintenance would delete them."""


class CatalogDamagedError(StoreDamagedError):
    """The catalog cannot be read (not a database, malformed, not a DuckLake)."""


class DataFileError(StoreDamagedError):
    """A data or delete file the catalog references is missing or unreadable (fields: path)."""

"""Errors of the processor package; each carries the fields that locate the problem."""

from __future__ import annotations

from journey.errors import BadEventError, ConfigError, FatalError
from warehouse.errors import StoreDamagedError


class ModelFileError(ConfigError):
    """A stage model file (SPEC 4.1) cannot be read or is invalid; the message names file, stage
    and rule."""

    def __init__(
        self,
        message: str,
        *,
        file: str,
        stage: str | None = None,
        rule: int | None = None,
    ) -> None:
        super().__init__(message, file=file, stage=stage, rule=rule)
        self.file = file
        self.stage = stage
        self.rule = rule

    def __str__(self) -> str:
        # The message already names file, stage and rule in words; repeating them is noise.
        return self.message


class UndecodableRecordError(BadEventError):
    """A log record that is not a canonical event; it goes to the dead-letter store."""


class LogBehindWarehouseError(StoreDamagedError):
    """The log ends before the offsets the warehouse committed (fields: partition, log_end,
    committed): it was replaced or lost its file."""


class ModelsChangedError(FatalError):
    """Another processor sharing the warehouse rebuilt it under other stage models (field:
    snapshot): this one's state and models are stale, so it stops and its restart loads them."""

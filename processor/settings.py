"""Settings of the stream processor."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from journey.settings import CommonSettings


class ProcessorSettings(CommonSettings):
    """How the processor batches, sessionizes and which stage models it applies."""

    batch_max_records: int = Field(
        default=50_000, ge=1, description="Most records consumed into one micro-batch."
    )
    poll_timeout_s: float = Field(
        default=0.2, gt=0, description="Longest wait for the first record of a micro-batch (s)."
    )
    session_timeout_s: int = Field(
        default=1800, ge=1, description="Inactivity gap that ends a web/app session (SPEC 3, s)."
    )
    split_on_campaign_change: bool = Field(
        default=True, description="Start a new session when the campaign changes (SPEC 3)."
    )
    models: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["default"],
        description="Active stage models: preset names or paths to TOML/YAML model files.",
    )
    maintain_every: int = Field(
        default=100, ge=1,
        description=("Commits between the starts of two rounds of warehouse maintenance "
                     "(run step by step between commits)."),
    )
    group_id: str | None = Field(
        default=None,
        description="Kafka consumer group of the processors sharing a topic and a warehouse "
        "(each reads the partitions the group gives it); unset = `journey-processors.<topic>`.",
    )

    retry_backoff_s: float = Field(
        default=1.0, gt=0, description="First wait before retrying a retryable failure (s)."
    )
    rebuild_workers: int = Field(
        default=0, ge=0, le=64,
        description="Worker processes deriving a rebuild (`journey rebuild`, at start, on "
        "request, by `journey doctor`), each holding about 600 MiB; 0 = one per core, at most 4.",
    )

    @property
    def group(self) -> str:
        """The consumer group to join."""
        return self.group_id or f"journey-processors.{self.topic}"

    @property
    def workers(self) -> int | None:
        """The rebuild's worker processes; None: one per core (processor/rebuild.py)."""
        return self.rebuild_workers or None

    @field_validator("models", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

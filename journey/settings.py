"""Settings shared by every service. Each service's own frozen Settings extends `CommonSettings`.

Settings are read once, in an entry point, from `JOURNEY_*` environment variables (or passed in
by a test) and handed down; nothing else reads the environment.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

QUARANTINE = "quarantine"


class CommonSettings(BaseSettings):
    """Where the data lives and which log carries the events."""

    model_config = SettingsConfigDict(env_prefix="JOURNEY_", frozen=True, extra="ignore")

    data_dir: Path = Field(
        default=Path("data"),
        description="Directory holding everything journey stores (embedded log, warehouse).",
    )
    kafka_bootstrap: str | None = Field(
        default=None,
        description="Kafka bootstrap servers HOST:PORT[,HOST:PORT]; unset = embedded log.",
    )
    topic: str = Field(default="journey.events", description="Topic (or embedded log) of events.")
    partitions: int = Field(
        default=6, ge=1, le=1024, description="Partitions of the events topic when it is created."
    )
    catalog_url: str | None = Field(
        default=None,
        description="DuckLake catalog (`postgres:dbname=... host=...` or a `postgresql://` URL); "
        "unset = a SQLite catalog file in the warehouse directory.",
    )
    kafka_retention_hours: float = Field(
        default=168, gt=0, le=24 * 365 * 10,
        description="Retention of the Kafka events topic, set on the topic when journey opens it: "
                    "the bound on how long an erased customer's raw events stay in the broker.",
    )

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "log"

    @property
    def quarantine_dir(self) -> Path:
        """Where `journey doctor --repair` moves damaged files (never deleted by a repair)."""
        return self.data_dir / QUARANTINE

    @property
    def warehouse_dir(self) -> Path:
        return self.data_dir / "warehouse"

    @property
    def spill_dir(self) -> Path:
        """Where a writer's DuckDB spills what outgrows its memory limit (warehouse/spill.py)."""
        return self.data_dir / "spill"

"""Settings of the warehouse writer (SPEC 6.3): where the DuckLake lives and how it is kept."""

from __future__ import annotations

from pydantic import Field

from journey.settings import CommonSettings


class WarehouseSettings(CommonSettings):
    """How the lake is kept: locks, snapshots' grace period, inlining, upkeep (its catalog is
    CommonSettings.catalog_url: every reader needs it too)."""

    grace_period_s: float = Field(
        default=600.0,
        ge=0.0,
        description="Seconds a superseded snapshot (and its files) stays readable by readers.",
    )
    lock_timeout_s: float = Field(
        default=10.0,
        ge=0.0,
        description="Seconds a second writer waits for the warehouse lock before failing.",
    )
    inline_row_limit: int = Field(
        default=1000,
        ge=0,
        le=100_000,
        description="Inserts of at most this many rows go into the catalog, not a Parquet file.",
    )
    maintain_max_files: int = Field(
        default=200,
        ge=2,
        description="Most files one maintenance call merges (bounds its work).",
    )
    compact_files: int = Field(
        default=64,
        ge=1,
        description="A table is rewritten whole once this many of its data files carry deletes.",
    )
    commit_retries: int = Field(
        default=5,
        ge=0,
        description="Retries of a commit that meets a DuckLake transaction conflict.",
    )

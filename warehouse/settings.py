"""Settings of the warehouse writer (SPEC 6.3)."""

from __future__ import annotations

from pydantic import Field

from journey.settings import CommonSettings


class WarehouseSettings(CommonSettings):
    """Where and how the warehouse stores its Parquet files."""

    buckets: int = Field(
        default=16,
        ge=1,
        le=4096,
        description="Customer buckets of the derived tables; a commit rewrites the touched ones.",
    )
    grace_period_s: float = Field(
        default=600.0,
        ge=0.0,
        description="Seconds an unreferenced file is kept so readers of an older snapshot finish.",
    )
    lock_timeout_s: float = Field(
        default=10.0,
        ge=0.0,
        description="Seconds a second writer waits for the warehouse lock before failing.",
    )
    compact_max_files: int = Field(
        default=64,
        ge=2,
        description="Compact the events table when it has more files than this.",
    )
    compact_target_rows: int = Field(
        default=1_000_000,
        ge=1,
        description="Rows per events file written by compaction.",
    )
    write_threads: int = Field(
        default=8,
        ge=1,
        le=64,
        description="Threads writing the files of one commit (mostly waiting on fsync).",
    )
    row_group_rows: int = Field(
        default=128_000,
        ge=1_000,
        description="Rows per Parquet row group.",
    )

"""Settings of the analytics API (built once in an entry point, then passed down)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from journey.settings import CommonSettings
from journey.tokens import check_entries


class ApiSettings(CommonSettings):
    """Who may call the API, where it listens, and how it follows the warehouse."""

    api_tokens: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Bearer tokens accepted by the API, comma-separated; each TOKEN (all scopes) "
        "or TOKEN:SCOPE+SCOPE with scopes read, pii, admin; none = all 401.",
    )
    host: str = Field(default="127.0.0.1", description="Address the API-only process listens on.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port of the API-only process.")
    refresh_interval_s: float = Field(
        default=0.1,
        ge=0.0,
        description="Seconds between checks of the catalog for a newer snapshot (a 0.1 ms read).",
    )
    cache_entries: int = Field(
        default=1024, ge=0, description="Query results kept per snapshot version (0 = no cache)."
    )
    warm_cache: bool = Field(
        default=True,
        description="Compute funnel, KPIs and journey map of every model when a snapshot loads "
        "(until a newer one is committed).",
    )
    events_limit: int = Field(
        default=10_000,
        ge=1,
        description="Most events /v1/customers/{key}/events returns in one call (`limit=` max).",
    )
    query_timeout_s: float = Field(
        default=10.0,
        gt=0.0,
        description="Seconds a POST /v1/query statement may run before it is interrupted.",
    )
    query_memory_mb: int = Field(
        default=1024,
        ge=64,
        description="Resident memory (MB) a POST /v1/query process may reach; past it the "
        "statement is stopped (checked every 10 ms) and the answer is a 400.",
    )
    query_max_bytes: int = Field(
        default=10 * 2**20,
        ge=1024,
        description="Most bytes of rows one POST /v1/query answer carries; more are cut, "
        "truncated=true.",
    )
    query_workers: int = Field(
        default=1,
        ge=1,
        description="POST /v1/query statements run at once, each in its own niced process "
        "pinned to one core; later ones wait up to the timeout.",
    )
    query_max_rows: int = Field(
        default=10_000,
        ge=1,
        description="Most rows POST /v1/query returns (`limit` max); more are cut, truncated=true.",
    )

    @field_validator("api_tokens", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        # JOURNEY_API_TOKENS is "a,b,c"; a list passed by code is kept as is.
        if isinstance(value, str):
            return [token.strip() for token in value.split(",") if token.strip()]
        return value

    @field_validator("api_tokens")
    @classmethod
    def _known_scopes(cls, value: list[SecretStr]) -> list[SecretStr]:
        return check_entries(value)  # a typo in a scope fails at start-up, not per request

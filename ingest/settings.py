"""Settings of the collector (SPEC 1.1 limits, write keys, CORS)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from journey.settings import CommonSettings
from journey.tokens import check_entries


def _split_commas(value: Any) -> Any:
    """Environment values are comma-separated lists, not JSON."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class IngestSettings(CommonSettings):
    """What the collector accepts and from whom."""

    write_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Accepted write keys, comma-separated (JOURNEY_WRITE_KEYS); none = reject all.",
    )
    max_event_bytes: int = Field(
        default=32 * 1024, ge=1, description="Largest accepted event, in bytes of JSON as sent."
    )
    max_request_bytes: int = Field(
        default=500 * 1024,
        ge=1,
        description="Largest accepted request body, compressed and decompressed, in bytes.",
    )
    max_batch_events: int = Field(
        default=2500, ge=1, description="Most events accepted in one /v1/batch request."
    )
    future_tolerance_s: float = Field(
        default=86400.0,
        ge=0,
        description="Event times further than this past received_at are clamped and flagged.",
    )
    retry_after_s: int = Field(
        default=1, ge=0, description="Retry-After seconds sent with a 503 when the log is down."
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["*"],
        description="Origins allowed to send events from a browser, comma-separated; * = any.",
    )
    rate_limit_per_s: float = Field(
        default=200.0,
        ge=0,
        description="Requests per second each write key may send to the collector; 0 = no limit.",
    )
    rate_limit_burst: int = Field(
        default=1000, ge=1, description="Requests a write key may send at once above its rate."
    )
    max_bulk_bytes: int = Field(
        default=20 * 1024 * 1024,
        ge=1,
        description="Largest body of a POST /v1/imports or email-webhook request, in bytes.",
    )
    sendgrid_public_key: SecretStr | None = Field(
        default=None,
        description="SendGrid Signed Event Webhook verification key (base64 DER or PEM); "
        "set = signatures required, unset = a write key (?key= or Basic auth) is required.",
    )
    api_tokens: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Bearer tokens (JOURNEY_API_TOKENS); those with the admin scope may list "
        "and replay dead letters.",
    )

    @field_validator("write_keys", "cors_origins", "api_tokens", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return _split_commas(value)

    @field_validator("api_tokens")
    @classmethod
    def _known_scopes(cls, value: list[SecretStr]) -> list[SecretStr]:
        return check_entries(value)

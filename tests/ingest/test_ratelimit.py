"""Per-write-key token buckets on every collector endpoint (429 + Retry-After), and CORS on them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from ingest.app import create_app
from ingest.ratelimit import RateLimiter
from ingest.settings import IngestSettings
from journey.log.embedded import EmbeddedLog

Basic = Callable[..., dict[str, str]]
OTHER_KEY = "wk-other-9876543210"


class Clock:
    """A clock the test moves by hand (the limiter takes time as an argument)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_burst_is_granted_then_the_wait_is_one_token_at_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(rate_per_s=2.0, burst=3, clock=clock)
    assert [limiter.acquire("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("k") == pytest.approx(0.5)
    clock.now += 0.25
    assert limiter.acquire("k") == pytest.approx(0.25)
    clock.now += 0.25
    assert limiter.acquire("k") == 0.0
    assert limiter.acquire("other") == 0.0  # buckets are per key


def test_tokens_refill_up_to_the_burst_only() -> None:
    clock = Clock()
    limiter = RateLimiter(rate_per_s=10.0, burst=2, clock=clock)
    clock.now += 3600
    assert [limiter.acquire("k") > 0 for _ in range(3)] == [False, False, True]


def test_rate_zero_is_unlimited() -> None:
    limiter = RateLimiter(rate_per_s=0.0, burst=1)
    assert all(limiter.acquire("k") == 0.0 for _ in range(50))


@pytest.fixture
def limited(tmp_path: Path, log: EmbeddedLog, write_key: str) -> Iterator[TestClient]:
    settings = IngestSettings(
        data_dir=tmp_path, write_keys=[SecretStr(write_key), SecretStr(OTHER_KEY)],
        rate_limit_per_s=0.01, rate_limit_burst=2, cors_origins=["https://shop.example"])
    with TestClient(create_app(settings, log)) as client:
        yield client


TRACK = {"event": "Product Viewed", "anonymousId": "anon-1"}


def test_over_the_rate_is_429_with_retry_after_and_cors(
    limited: TestClient, basic: Basic,
) -> None:
    headers = {**basic(), "Origin": "https://shop.example"}
    assert [limited.post("/v1/t", json=TRACK, headers=headers).status_code
            for _ in range(2)] == [200, 200]
    refused = limited.post("/v1/t", json=TRACK, headers=headers)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 100
    assert refused.json()["success"] is False and refused.json()["retry_after_s"] > 0
    # A browser can only read Retry-After when the origin is allowed and the header exposed.
    assert refused.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert refused.headers["Access-Control-Expose-Headers"] == "Retry-After"
    assert limited.post("/v1/t", json=TRACK, headers=basic(OTHER_KEY)).status_code == 200


def test_the_bucket_is_shared_by_every_collector_endpoint(
    limited: TestClient, basic: Basic, write_key: str,
) -> None:
    assert limited.post("/v1/batch", json={"batch": [{**TRACK, "type": "track"}]},
                        headers=basic()).status_code == 200
    assert limited.post("/v1/imports?kind=call&format=jsonl", headers=basic(),
                        content=b'{"email": "a@b.c", "started_at": "2024-01-01T00:00:00Z"}'
                        ).status_code == 200
    webhook = limited.post(f"/v1/webhooks/sendgrid?key={write_key}",
                           json=[{"email": "a@b.c", "event": "open", "timestamp": 1}])
    assert webhook.status_code == 429 and "Retry-After" in webhook.headers
    assert limited.post("/v1/imports?kind=call", headers=basic(),
                        content=b"email\na@b.c\n").status_code == 429


def test_cors_origins_setting_is_applied(limited: TestClient, basic: Basic) -> None:
    allowed = limited.options("/v1/t", headers={"Origin": "https://shop.example",
                                                "Access-Control-Request-Method": "POST"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    other = limited.post("/v1/t", json=TRACK, headers={**basic(), "Origin": "https://evil.example"})
    assert other.status_code == 200  # not a browser-enforced refusal: the browser hides it
    assert "Access-Control-Allow-Origin" not in other.headers

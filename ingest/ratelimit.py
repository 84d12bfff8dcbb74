"""Per-write-key token buckets: collector endpoints answer 429 + Retry-After when one is empty.

One bucket per write key (by its non-secret name), `rate_per_s` tokens a second up to `burst`;
each request costs one token whatever its size (the byte and batch limits bound the size).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from ingest.errors import RateLimitedError, WireError
from ingest.settings import IngestSettings


class RateLimiter:
    """Token buckets keyed by write-key name; thread-safe (handlers run in a thread pool)."""

    def __init__(self, rate_per_s: float, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate_per_s = rate_per_s
        self.burst = max(burst, 1)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: IngestSettings) -> RateLimiter:
        """The limiter the settings ask for (rate 0 = unlimited)."""
        return cls(settings.rate_limit_per_s, settings.rate_limit_burst)

    def acquire(self, key: str) -> float:
        """Take one token for `key`: 0.0 if granted, else the seconds until one is available."""
        if self.rate_per_s <= 0:
            return 0.0
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate_per_s)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate_per_s

    def check(self, key: str) -> None:
        """Take one token for `key` or raise RateLimitedError with the wait."""
        wait = self.acquire(key)
        if wait > 0:
            raise RateLimitedError(
                f"rate limit of {self.rate_per_s:g} requests/s (burst {self.burst}) exceeded "
                "for this write key; retry after the Retry-After seconds", retry_after_s=wait)


def retry_fields(error: WireError) -> dict[str, Any]:
    """Extra JSON fields of an error answer: the wait of a 429, nothing otherwise."""
    if isinstance(error, RateLimitedError):
        return {"retry_after_s": round(error.retry_after_s, 3)}
    return {}


def retry_headers(payload: dict[str, Any]) -> dict[str, str]:
    """Retry-After (whole seconds, at least 1) of a 429 answer, readable by browser scripts."""
    wait = payload.get("retry_after_s", 1)
    return {"Retry-After": str(max(1, math.ceil(float(wait)))),
            "Access-Control-Expose-Headers": "Retry-After"}

"""Per-principal and per-source rate limits that reject instead of blocking.

Each key (for example 'principal:alice' or 'source:ubuntu-irc/x') has a token
bucket of `burst` tokens refilled at `rate_per_second`. A request takes one
token from every bucket it touches, atomically: when any bucket is empty the
request is rejected with `RateLimitExceeded` and no bucket is charged.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from pydantic import BaseModel, Field

from tworail.governance.errors import RateLimitExceeded


class BucketConfig(BaseModel):
    """Size and refill rate of one kind of token bucket."""

    model_config = {"extra": "forbid"}

    rate_per_second: float = Field(gt=0)
    """Tokens added per second."""
    burst: int = Field(ge=1)
    """Bucket capacity: the most requests accepted back to back."""


class RateLimitConfig(BaseModel):
    """Rate limits of the learn path, the `[rate_limits]` table of a learn policy."""

    model_config = {"extra": "forbid"}

    per_principal: BucketConfig | None = Field(default_factory=lambda: BucketConfig(rate_per_second=5.0, burst=50))
    """Bucket of each principal, or None for no limit."""
    per_source: BucketConfig | None = Field(default_factory=lambda: BucketConfig(rate_per_second=2.0, burst=20))
    """Bucket of each source id, or None for no limit."""


class TokenBucket:
    """A token bucket; not locked itself, `RateLimiter` serializes access."""

    def __init__(self, config: BucketConfig, now: float) -> None:
        self.config = config
        self.tokens = float(config.burst)
        self.updated = now

    def refill(self, now: float) -> None:
        """Add the tokens earned since the last refill, up to the burst size."""
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(float(self.config.burst), self.tokens + elapsed * self.config.rate_per_second)
        self.updated = now

    def wait_time(self) -> float:
        """Return the seconds until one token is available (0 when one is)."""
        return max(0.0, (1.0 - self.tokens) / self.config.rate_per_second)


class RateLimiter:
    """Thread-safe token buckets keyed by principal and source."""

    def __init__(self, config: RateLimitConfig | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config or RateLimitConfig()
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def _bucket(self, key: str, config: BucketConfig, now: float) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None or bucket.config != config:
            bucket = self._buckets[key] = TokenBucket(config, now)
        bucket.refill(now)
        return bucket

    def acquire(self, *, principal: str, source: str) -> None:
        """Take one token for `principal` and one for `source`, or raise `RateLimitExceeded`."""
        keys: list[tuple[str, BucketConfig]] = []
        if self.config.per_principal is not None:
            keys.append((f"principal:{principal}", self.config.per_principal))
        if self.config.per_source is not None:
            keys.append((f"source:{source}", self.config.per_source))
        self._acquire(keys)

    def _acquire(self, keys: Sequence[tuple[str, BucketConfig]]) -> None:
        with self._lock:
            now = self._clock()
            buckets = [(key, self._bucket(key, config, now)) for key, config in keys]
            for key, bucket in buckets:
                if bucket.tokens < 1.0:
                    wait = bucket.wait_time()
                    raise RateLimitExceeded(
                        f"rate limit exceeded for {key}: at most {bucket.config.burst} requests at once and "
                        f"{bucket.config.rate_per_second:g} per second; retry in {wait:.2f} s",
                        key=key, retry_after=wait,
                    )
            for _, bucket in buckets:
                bucket.tokens -= 1.0

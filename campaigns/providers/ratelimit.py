"""Per-provider rate limits: a token bucket whose state lives in Redis, shared by all workers.

`bucket_take` is the pure core (no I/O, unit-tested); `RedisTokenBucket` stores its state in
one Redis hash per provider and updates it with an optimistic WATCH/MULTI transaction, using
Redis's clock so that workers on several machines agree on the time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from campaigns.providers.base import ProviderTransientError

KEY_PREFIX = "campaigns:provider_rate:"


@dataclass(frozen=True)
class Bucket:
    tokens: float
    updated_at: float


def bucket_take(
    bucket: Bucket | None, *, now: float, rate: float, capacity: float, cost: float = 1.0
) -> tuple[Bucket, float]:
    """Refill at `rate` tokens per second up to `capacity`, then take `cost` tokens.

    Returns the new bucket and 0.0 when taken, or the unchanged (refilled) bucket and the
    seconds until enough tokens are there. A new bucket starts full; a clock that went
    backwards refills nothing.
    """
    if bucket is None:
        bucket = Bucket(tokens=capacity, updated_at=now)
    elapsed = max(0.0, now - bucket.updated_at)
    tokens = min(capacity, bucket.tokens + elapsed * rate)
    updated_at = max(now, bucket.updated_at)
    if tokens >= cost:
        return Bucket(tokens=tokens - cost, updated_at=updated_at), 0.0
    return Bucket(tokens=tokens, updated_at=updated_at), (cost - tokens) / rate


class RedisTokenBucket:
    """`rate` sends per second with bursts up to `capacity`; `rate <= 0` means no limit."""

    def __init__(self, *, name: str, rate: float, capacity: float, client: redis.Redis):
        self.name = name
        self.rate = rate
        self.capacity = max(1.0, capacity)
        self.client = client
        self.key = KEY_PREFIX + name
        # The state is worthless once the bucket would be full again.
        self.ttl = max(1, int(self.capacity / rate) + 60) if rate > 0 else 60

    def try_take(self, cost: float = 1.0) -> float:
        """Take `cost` tokens if there are enough; returns 0.0, or the seconds to wait."""
        if self.rate <= 0:
            return 0.0
        with self.client.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(self.key)
                    tokens, updated_at = pipe.hmget(self.key, ["tokens", "updated_at"])
                    seconds, micros = pipe.time()
                    bucket = (
                        Bucket(tokens=float(tokens), updated_at=float(updated_at))
                        if tokens is not None and updated_at is not None
                        else None
                    )
                    new, wait = bucket_take(
                        bucket,
                        now=seconds + micros / 1e6,
                        rate=self.rate,
                        capacity=self.capacity,
                        cost=cost,
                    )
                    pipe.multi()
                    pipe.hset(
                        self.key,
                        mapping={"tokens": repr(new.tokens), "updated_at": repr(new.updated_at)},
                    )
                    pipe.expire(self.key, self.ttl)
                    pipe.execute()
                    return wait
                except redis.WatchError:
                    continue

    def take(self, *, max_wait: float = 1.0, cost: float = 1.0, sleep=time.sleep) -> None:
        """Wait for a token, sleeping at most `max_wait` seconds in all; when the wait would be
        longer, raise ProviderTransientError with `retry_after` so the task retries later
        instead of holding a worker."""
        waited = 0.0
        while True:
            wait = self.try_take(cost)
            if wait <= 0:
                return
            if waited + wait > max_wait:
                raise ProviderTransientError(
                    f"{self.name} rate limit reached", retry_after=wait, status=429
                )
            sleep(wait)
            waited += wait

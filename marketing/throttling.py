import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from rest_framework.throttling import SimpleRateThrottle

from marketing.models import ApiKey

logger = logging.getLogger(__name__)


class _ReusingClient(RedisCacheClient):
    """Django's client builds a redis.Redis (and its callback tables) on every call; this one
    keeps one per connection pool."""

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        reused = self.__dict__.setdefault("_reused", {})
        if index not in reused:
            reused[index] = self._client(connection_pool=self._get_connection_pool(write))
        return reused[index]


class _ReusingRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _ReusingClient


_default_caches: dict[str, RedisCache] = {}


def default_cache_reusing() -> RedisCache:
    """The default cache (same keys and values as `caches["default"]`, so shared state such
    as rate-limit counters stays shared) with clients reused across calls."""
    params = settings.CACHES["default"]
    location = params["LOCATION"]
    cache = _default_caches.get(location)
    if cache is None:
        cache = _default_caches[location] = _ReusingRedisCache(location, params)
    return cache


@dataclass(frozen=True)
class Quota:
    """One request's count against a per-key limit: the fixed window's counter in Redis
    (the full key), the limit, the counter's time to live, and when the window ends."""

    key: str
    limit: int
    expire_seconds: int
    window_end: float


_rates: dict[str, tuple[int, int]] = {}


def counter_quota(*, caller: str, rate: str, now: float) -> Quota:
    """The counter ApiKeyRateThrottle increments for `caller` at `now` (one per window)."""
    parsed = _rates.get(rate)
    if parsed is None:
        count, seconds = SimpleRateThrottle.parse_rate(None, rate)  # type: ignore[arg-type]
        if count is None or seconds is None:
            raise ValueError(f"not a rate: {rate!r}")
        parsed = _rates[rate] = (count, seconds)
    limit, duration = parsed
    window = int(now // duration)
    name = default_cache_reusing().make_and_validate_key(
        f"throttle_{ApiKeyRateThrottle.scope}_{caller}_{window}"
    )
    return Quota(
        key=name, limit=limit, expire_seconds=duration + 1, window_end=(window + 1) * duration
    )


def api_key_quota(key: ApiKey, *, now: float) -> Quota | None:
    """The quota ApiKeyRateThrottle applies to a storefront key (None: no limit)."""
    rate = key.rate_limit or ApiKeyRateThrottle.THROTTLE_RATES.get(ApiKeyRateThrottle.scope)
    return None if rate is None else counter_quota(caller=f"key:{key.pk}", rate=rate, now=now)


class OverLimitError(Exception):
    """A hot path counted the call against its quota and found it over the limit: nothing
    was done for it. The handler sets REFUSED_KEY and lets DRF answer the 429."""

    def __init__(self, wait_seconds: float) -> None:
        super().__init__(f"over the rate limit, retry in {wait_seconds:.1f} s")
        self.wait_seconds = wait_seconds


def quota_take(quota: Quota, *, now: float | None = None) -> None:
    """Count one call against `quota` in one round trip (ApiKeyRateThrottle's counter);
    raises OverLimitError when it is over. Fails open (not counted) without Redis."""
    try:
        cache = default_cache_reusing()
        pipe = cache._cache.get_client(quota.key, write=True).pipeline(transaction=False)
        pipe.incr(quota.key)
        pipe.expire(quota.key, quota.expire_seconds)
        count = pipe.execute()[0]
    except Exception as exc:  # noqa: BLE001 - the limiter must not take the API down
        logger.warning(
            "rate limit unavailable, request let through", extra={"error": str(exc)[:300]}
        )
        return
    if count > quota.limit:
        raise OverLimitError(max(0.0, quota.window_end - (now or time.time())))


def api_key_quota_or_none(key: ApiKey, *, now: float) -> Quota | None:
    """api_key_quota, or None (not counted) when the limit cannot be computed: the limiter
    fails open as the throttle does."""
    try:
        return api_key_quota(key, now=now)
    except Exception:  # noqa: BLE001 - the limiter must not take the API down
        return None


# Set in the request's environ (META) by a hot path that counted the call in its own Redis
# round trip and found it over the limit: the seconds to wait. DRF's view then refuses it
# without counting it a second time (experiments.api, recommender.api_offers; the environ
# outlives the hot path's request object when marketing.hot_paths hands the call to Django).
REFUSED_KEY = "marketing.throttle_refused_wait"


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Per-key rate limit, counted in Redis (the default cache), in O(1): one INCR of a
    counter per fixed window, in one round trip. Every endpoint shares the key's counter
    (scope "api_key"); the hot paths count into the same counter inside their own Redis
    script (`counter_quota`).

    A key's own `rate_limit` wins over the API_RATE_LIMIT default; logged-in users are
    limited per user, anonymous callers per IP address. DRF's own throttle keeps the list of
    every request time in the window and pickles it to and from Redis on each call: at
    hundreds of requests a second that list alone costs milliseconds, more than a whole
    recommendation or assignment. A fixed window admits up to twice the rate across a window
    boundary, which is fine for protecting the service. Without Redis it fails open."""

    scope = "api_key"

    def allow_request(self, request, view):
        refused = getattr(request, "_request", request).META.get(REFUSED_KEY)
        if refused is not None:
            self.wait_seconds = refused
            return False
        key = request.auth if isinstance(request.auth, ApiKey) else None
        rate = key.rate_limit if key is not None and key.rate_limit else self.rate
        if rate is None:
            return True
        now = time.time()
        try:
            quota = counter_quota(caller=self.caller(request), rate=rate, now=now)
        except Exception as exc:  # noqa: BLE001 - the limiter must not take the API down
            logger.warning(
                "rate limit unavailable, request let through", extra={"error": str(exc)[:300]}
            )
            return True
        try:
            quota_take(quota, now=now)
        except OverLimitError as exc:
            self.wait_seconds = exc.wait_seconds
            return False
        return True

    def wait(self):
        return getattr(self, "wait_seconds", None)

    def caller(self, request) -> str:
        if isinstance(request.auth, ApiKey):
            return f"key:{request.auth.pk}"
        if request.user and request.user.is_authenticated:
            return f"user:{request.user.pk}"
        return f"ip:{self.get_ident(request)}"

import logging
import time

from django.conf import settings
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from rest_framework.throttling import SimpleRateThrottle

from marketing.models import ApiKey

logger = logging.getLogger(__name__)


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Per-key rate limit, counted in Redis (the default cache).

    A key's own `rate_limit` wins over the API_RATE_LIMIT default; logged-in users are
    limited per user, anonymous callers per IP address.
    """

    scope = "api_key"

    def allow_request(self, request, view):
        key = request.auth if isinstance(request.auth, ApiKey) else None
        if key is not None and key.rate_limit:
            self.rate = key.rate_limit
            self.num_requests, self.duration = self.parse_rate(self.rate)
        try:
            return super().allow_request(request, view)
        except Exception as exc:  # noqa: BLE001 - the limiter must not take the API down
            logger.warning(
                "rate limit unavailable, request let through", extra={"error": str(exc)[:300]}
            )
            return True

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.caller(request)}

    def caller(self, request) -> str:
        if isinstance(request.auth, ApiKey):
            return f"key:{request.auth.pk}"
        if request.user and request.user.is_authenticated:
            return f"user:{request.user.pk}"
        return f"ip:{self.get_ident(request)}"


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


class ServingRateThrottle(ApiKeyRateThrottle):
    """The per-key limit (failing open like every endpoint's) through a Redis client that is
    not rebuilt per call; same counters as every other endpoint."""

    def __init__(self) -> None:
        super().__init__()
        self.cache = default_cache_reusing()


class CounterRateThrottle(ApiKeyRateThrottle):
    """The per-key limit in O(1): one INCR of a counter per fixed window, in one round trip.

    DRF's throttle keeps the list of every request time in the window and pickles it to and
    from Redis on each call; at hundreds of requests a second that list alone costs
    milliseconds, more than the whole experiment assignment. A fixed window admits up to
    twice the rate across a window boundary, which is fine for protecting the service.
    Counted apart from the other endpoints (scope "api_key_counter")."""

    counter_scope = "api_key_counter"

    def allow_request(self, request, view):
        key = request.auth if isinstance(request.auth, ApiKey) else None
        rate = key.rate_limit if key is not None and key.rate_limit else self.rate
        if rate is None:
            return True
        try:
            limit, duration = self.parse_rate(rate)
            now = time.time()
            window = int(now // duration)
            cache = default_cache_reusing()
            name = cache.make_and_validate_key(
                f"throttle_{self.counter_scope}_{self.caller(request)}_{window}"
            )
            pipe = cache._cache.get_client(name, write=True).pipeline(transaction=False)
            pipe.incr(name)
            pipe.expire(name, duration + 1)
            count = pipe.execute()[0]
        except Exception as exc:  # noqa: BLE001 - the limiter must not take the API down
            logger.warning(
                "rate limit unavailable, request let through", extra={"error": str(exc)[:300]}
            )
            return True
        if count > limit:
            self.wait_seconds = (window + 1) * duration - now
            return False
        return True

    def wait(self):
        return getattr(self, "wait_seconds", None)

import logging

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
        if isinstance(request.auth, ApiKey):
            ident = f"key:{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}

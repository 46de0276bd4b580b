"""Redis on a request's hot path: short socket timeouts and a circuit breaker.

A hung Redis must not stall a request for seconds, and a down one must not cost a failed
connection (and a log line) per call. `RedisBreaker` keeps one long-lived redis-py client per
Redis location with short timeouts; after an error the caller skips Redis for
`open_seconds`. The first failure after a success is logged as a warning without a trace;
further failures until Redis answers again are logged at debug level.
"""

import logging
import threading
import time

import redis
from django.conf import settings
from redis.commands.core import Script


class RedisBreaker:
    def __init__(
        self,
        *,
        logger: logging.Logger,
        message: str,
        socket_timeout: float = 0.25,
        open_seconds: float = 2.0,
    ) -> None:
        self.logger = logger
        self.message = message
        self.socket_timeout = socket_timeout
        self.open_seconds = open_seconds
        self.open_until = 0.0
        self.failing = False
        self._clients: dict[str, redis.Redis] = {}
        self._scripts: dict[tuple[int, str], Script] = {}
        self._lock = threading.Lock()

    def client(self) -> redis.Redis:
        """The client of the default cache's Redis location (built once per location)."""
        location = settings.CACHES["default"]["LOCATION"]
        client = self._clients.get(location)
        if client is None:
            with self._lock:
                client = self._clients.get(location)
                if client is None:
                    client = self._clients[location] = redis.Redis.from_url(
                        location,
                        socket_timeout=self.socket_timeout,
                        socket_connect_timeout=self.socket_timeout,
                        health_check_interval=30,
                    )
        return client

    def script(self, source: str) -> Script:
        """The Lua script `source` for the current client (registered once per client: it
        runs by EVALSHA, loaded again by redis-py when Redis has forgotten it)."""
        client = self.client()
        script = self._scripts.get((id(client), source))
        if script is None:
            script = self._scripts[(id(client), source)] = client.register_script(source)
        return script

    def available(self) -> bool:
        return time.monotonic() >= self.open_until

    def succeeded(self) -> None:
        if self.failing:
            self.failing = False
            self.logger.info(f"{self.message}: Redis answers again")

    def failed(self, operation: str, exc: Exception) -> None:
        self.open_until = time.monotonic() + self.open_seconds
        level = logging.DEBUG if self.failing else logging.WARNING
        self.failing = True
        self.logger.log(
            level,
            self.message,
            extra={"operation": operation, "error": f"{type(exc).__name__}: {exc}"[:300]},
        )

    def reset(self) -> None:
        """Forget a past failure (tests that bring Redis back, or an operator)."""
        self.open_until = 0.0
        self.failing = False

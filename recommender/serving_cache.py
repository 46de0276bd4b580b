"""Redis for the recommendation hot path: every access goes through here and any Redis error
is a miss (logged, never raised), so serving degrades to PostgreSQL instead of a 500.

It talks to the default cache's Redis (settings.CACHES["default"]["LOCATION"]) with its own
long-lived redis-py client: Django's cache builds a client object per call, which costs more
than the round trip on this path; short socket timeouts keep a hung Redis from hanging
requests. After an error Redis is skipped for `BREAKER_SECONDS`, so a down Redis costs one
failed connection per process every few seconds instead of one per call (the client and the
breaker are marketing.common.redis_breaker's).

`serving_cache_invalidate()` bumps a generation counter that every cached snapshot is keyed
by: activating a model version or changing the catalog makes every process reload.
"""

import logging
import pickle
import threading
import time
from typing import Any

from django.conf import settings

from marketing.common.redis_breaker import RedisBreaker

logger = logging.getLogger(__name__)

PREFIX = "rec:"
GENERATION_KEY = "gen"
BREAKER_SECONDS = 2.0
SOCKET_TIMEOUT = 0.25

breaker = RedisBreaker(
    logger=logger,
    message="recommendation cache unavailable",
    socket_timeout=SOCKET_TIMEOUT,
    open_seconds=BREAKER_SECONDS,
)
_local_lock = threading.Lock()
_local_listeners: list = []


def _key(key: str) -> str:
    return f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:{PREFIX}{key}"


def _load(raw: bytes | str | None) -> Any:
    if not isinstance(raw, bytes):  # missing (None); str never: the client does not decode
        return None
    try:
        return pickle.loads(raw)  # noqa: S301 - our own Redis, written by cache_set below
    except Exception as exc:  # noqa: BLE001 - a value from an older code version is a miss
        logger.warning("unreadable cache value", extra={"error": str(exc)[:300]})
        return None


def _found(keys: list[str], raw_values: list) -> dict[str, Any]:
    """The keys whose raw Redis value decodes (as given)."""
    found = {}
    for key, raw in zip(keys, raw_values, strict=True):
        value = _load(raw)
        if value is not None:
            found[key] = value
    return found


def cache_get(key: str, default: Any = None) -> Any:
    return cache_get_many([key]).get(key, default)


def cache_get_many(keys: list[str]) -> dict[str, Any]:
    """The keys found (as given); {} when Redis fails."""
    if not keys or not breaker.available():
        return {}
    try:
        values = breaker.client().mget([_key(k) for k in keys])
    except Exception as exc:  # noqa: BLE001 - any Redis failure is a miss
        breaker.failed("get", exc)
        return {}
    breaker.succeeded()
    return _found(keys, values)


def cache_set(key: str, value: Any, *, timeout: int) -> None:
    cache_set_many({key: value}, timeout=timeout)


def cache_set_many(values: dict[str, Any], *, timeout: int) -> None:
    if not values or not breaker.available():
        return
    try:
        pipe = breaker.client().pipeline(transaction=False)
        for key, value in values.items():
            pipe.set(_key(key), pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), ex=timeout)
        pipe.execute()
    except Exception as exc:  # noqa: BLE001
        breaker.failed("set", exc)


def cache_delete_many(keys: list[str]) -> None:
    if not keys or not breaker.available():
        return
    try:
        breaker.client().delete(*[_key(k) for k in keys])
    except Exception as exc:  # noqa: BLE001
        breaker.failed("delete", exc)


def generation_and_get(keys: list[str]) -> tuple[int | None, dict[str, Any]]:
    """The cache generation (created on first use) and `keys`, in one round trip; (None, {})
    when Redis is unavailable."""
    if not breaker.available():
        return None, {}
    try:
        client = breaker.client()
        raw = client.mget([_key(GENERATION_KEY), *(_key(k) for k in keys)])
        generation = raw[0]
        if generation is None:
            client.set(_key(GENERATION_KEY), time.time_ns(), nx=True)
            generation = client.get(_key(GENERATION_KEY))
    except Exception as exc:  # noqa: BLE001
        breaker.failed("generation", exc)
        return None, {}
    breaker.succeeded()
    return (None if generation is None else int(generation)), _found(keys, raw[1:])


def local_listener_add(callback) -> None:
    """`callback()` runs on invalidation in this process (in-process snapshots drop)."""
    with _local_lock:
        _local_listeners.append(callback)


def serving_cache_invalidate() -> None:
    """Make every process reload its snapshots: bump the generation, drop local copies."""
    for callback in list(_local_listeners):
        callback()
    try:
        client = breaker.client()
        if client.incr(_key(GENERATION_KEY)) == 1:  # the key was gone: restart from the clock
            client.set(_key(GENERATION_KEY), time.time_ns())
    except Exception as exc:  # noqa: BLE001
        breaker.failed("invalidate", exc)

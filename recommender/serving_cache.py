"""Redis for the recommendation hot path: every access goes through here and any Redis error
is a miss (logged, never raised), so serving degrades to PostgreSQL instead of a 500.

After an error Redis is skipped for `BREAKER_SECONDS`, so a down Redis costs one failed
connection per process every few seconds instead of one per call.

`serving_cache_invalidate()` bumps a generation counter that every cached snapshot is keyed
by: activating a model version or changing the catalog makes every process reload.
"""

import logging
import threading
import time
from typing import Any

from django.core.cache import caches

logger = logging.getLogger(__name__)

PREFIX = "rec:"
GENERATION_KEY = PREFIX + "gen"
BREAKER_SECONDS = 2.0
_MISSING = object()

_breaker = {"open_until": 0.0}
_local_lock = threading.Lock()
_local_listeners: list = []


def _cache():
    return caches["default"]


def _available() -> bool:
    return time.monotonic() >= _breaker["open_until"]


def _failed(operation: str, exc: Exception) -> None:
    _breaker["open_until"] = time.monotonic() + BREAKER_SECONDS
    logger.warning(
        "recommendation cache unavailable",
        extra={"operation": operation, "error": f"{type(exc).__name__}: {exc}"[:300]},
    )


def breaker_reset() -> None:
    """Forget a past failure (tests that bring Redis back, or an operator)."""
    _breaker["open_until"] = 0.0


def cache_get(key: str, default: Any = None) -> Any:
    if not _available():
        return default
    try:
        value = _cache().get(PREFIX + key, _MISSING)
    except Exception as exc:  # noqa: BLE001 - any Redis failure is a miss
        _failed("get", exc)
        return default
    return default if value is _MISSING else value


def cache_get_many(keys: list[str]) -> dict[str, Any]:
    """The keys found (without the prefix); {} when Redis fails."""
    if not keys or not _available():
        return {}
    try:
        found = _cache().get_many([PREFIX + k for k in keys])
    except Exception as exc:  # noqa: BLE001
        _failed("get_many", exc)
        return {}
    return {k[len(PREFIX) :]: v for k, v in found.items()}


def cache_set(key: str, value: Any, *, timeout: float | None) -> None:
    if not _available():
        return
    try:
        _cache().set(PREFIX + key, value, timeout=timeout)
    except Exception as exc:  # noqa: BLE001
        _failed("set", exc)


def cache_set_many(values: dict[str, Any], *, timeout: float | None) -> None:
    if not values or not _available():
        return
    try:
        _cache().set_many({PREFIX + k: v for k, v in values.items()}, timeout=timeout)
    except Exception as exc:  # noqa: BLE001
        _failed("set_many", exc)


def generation_get() -> int | None:
    """The current cache generation, created on first use; None when Redis is unavailable."""
    if not _available():
        return None
    try:
        cache = _cache()
        value = cache.get(GENERATION_KEY)
        if value is None:
            cache.add(GENERATION_KEY, time.time_ns(), timeout=None)
            value = cache.get(GENERATION_KEY)
    except Exception as exc:  # noqa: BLE001
        _failed("generation", exc)
        return None
    return None if value is None else int(value)


def local_listener_add(callback) -> None:
    """`callback()` runs on invalidation in this process (in-process snapshots drop)."""
    with _local_lock:
        _local_listeners.append(callback)


def serving_cache_invalidate() -> None:
    """Make every process reload its snapshots: bump the generation, drop local copies."""
    for callback in list(_local_listeners):
        callback()
    try:
        cache = _cache()
        try:
            cache.incr(GENERATION_KEY)
        except ValueError:  # the key is missing: a new generation starts from the clock
            cache.add(GENERATION_KEY, time.time_ns(), timeout=None)
    except Exception as exc:  # noqa: BLE001
        _failed("invalidate", exc)

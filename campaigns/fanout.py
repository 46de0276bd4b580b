"""A segment campaign's fan-out state in Redis: its page cursor, audience size and last page.

Cursor: each page of the fan-out (campaigns/lifecycle.py) claims its range `(after_pk, last]`
by moving the campaign's cursor from at most `after_pk` up to `last`, atomically (a Lua
script). A page redelivered by the broker (acks are late, so a worker that died after
enqueueing the next page gives its page back) finds the cursor past its start and enqueues
nothing, instead of starting a second chain of pages that would double every batch after it.
A restart from an earlier member (resume, the sweeper) first moves the cursor back.

Audience size: counted once by the first page, so the progress bar that polls every two
seconds divides by a stored number instead of evaluating the segment again.

Last page: the time the fan-out last moved, which the sweeper reads instead of aggregating
the campaign's messages.

The keys carry the cache's KEY_PREFIX (so `cache.clear()` drops them with the rest) and
expire after FANOUT_TTL: a lost key costs a recount or one refused page check, never a wrong
send, since batches are idempotent.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import redis
from django.conf import settings

FANOUT_TTL = timedelta(days=7)
REDIS_TIMEOUT_SECONDS = 5

# KEYS[1] cursor; ARGV: after_pk, last_pk, ttl seconds. 1 if the page is claimed.
_CLAIM = """
local cursor = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) < cursor then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""

_state: dict = {"client": None, "url": None, "claim": None}
_lock = threading.Lock()


def _client() -> redis.Redis:
    if _state["url"] != settings.REDIS_URL:
        with _lock:
            client = redis.Redis.from_url(
                settings.REDIS_URL,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            )
            _state.update(
                client=client, url=settings.REDIS_URL, claim=client.register_script(_CLAIM)
            )
    return _state["client"]


def _key(campaign_id: int, name: str) -> str:
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "")
    return f"{prefix}:campaigns:fanout:{campaign_id}:{name}"


def _ttl() -> int:
    return int(FANOUT_TTL.total_seconds())


def fanout_page_claim(*, campaign_id: int, after_pk: int, last_pk: int) -> bool:
    """Claim the page `(after_pk, last_pk]`: False when the cursor is already past
    `after_pk` (this page, or a later one, was claimed by another run of the chain)."""
    _client()
    claimed = _state["claim"](keys=[_key(campaign_id, "cursor")], args=[after_pk, last_pk, _ttl()])
    if claimed:
        fanout_touch(campaign_id=campaign_id)
    return bool(claimed)


def fanout_reset(*, campaign_id: int, to_pk: int, fresh: bool = False) -> None:
    """Move the cursor back to `to_pk`, before a chain restarted from there. `fresh` (a
    launch) also drops the audience size and last page: keys left by an earlier campaign
    with the same id (a database recreated while Redis kept its keys) must not hold back
    the new fan-out or size its progress bar."""
    client = _client()
    if fresh:
        client.delete(_key(campaign_id, "audience"), _key(campaign_id, "moved"))
    client.set(_key(campaign_id, "cursor"), to_pk, ex=_ttl())


def fanout_cursor(*, campaign_id: int) -> int | None:
    value = _client().get(_key(campaign_id, "cursor"))
    return None if value is None else int(value)


def fanout_touch(*, campaign_id: int, at: datetime | None = None) -> None:
    at = at or datetime.now(tz=UTC)
    _client().set(_key(campaign_id, "moved"), at.timestamp(), ex=_ttl())


def fanout_last_moved(*, campaign_id: int) -> datetime | None:
    """When a page of the campaign was last claimed (None: not within FANOUT_TTL)."""
    value = _client().get(_key(campaign_id, "moved"))
    return None if value is None else datetime.fromtimestamp(float(value), tz=UTC)


def audience_size_store(*, campaign_id: int, size: int) -> None:
    _client().set(_key(campaign_id, "audience"), size, ex=_ttl())


def audience_size_get(*, campaign_id: int) -> int | None:
    value = _client().get(_key(campaign_id, "audience"))
    return None if value is None else int(value)

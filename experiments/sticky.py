"""The complete marker of a bandit's sticky keys, so that a customer's first exposure is
stored in the assignment's one Redis round trip instead of asking the exposure table first.

- `exp:full:<experiment>` (serving.sticky_marker_key) means "Redis holds the sticky key of
  every customer the exposure table knows for this experiment". Serving's Lua script stores a
  first assignment only while the marker exists; without it, the call asks the table as
  before and schedules one rebuild (`sticky_rebuild_soon`).
- Invariant: sticky keys live STICKY_DAYS from their write, the marker a day less from its
  own (serving.MARKER_TTL_SECONDS), so a key written after the marker (or up to a day
  before) never expires before it; a flushed or restarted Redis loses marker and keys
  together. Assumption: Redis never evicts keys (`maxmemory-policy noeviction`, which the
  exposure buffer needs anyway); an evicted sticky key under a live marker would give the
  customer a new variant without asking the table. Likewise Redis must persist with AOF (as
  the README requires): restored from an older RDB snapshot, it would bring back a marker
  without the keys written since; delete the `exp:full:*` keys after such a restore.
- The marker is set when a bandit starts (no exposure exists yet), and by `sticky_rebuild`,
  which writes every exposure's key from the table and sets the marker only if its canary
  survived: a flush during the rebuild leaves no marker.
- A record that named the customer by an alias is stored under the customer, whose external
  id is what the table is asked for: exposures_flush writes that id's key too
  (`sticky_renamed_store`), so the marker stays true.
"""

from __future__ import annotations

import logging
import secrets
import time

import redis

from experiments import selectors
from experiments.serving import (
    MARKER_TTL_SECONDS,
    STICKY_DAYS,
    breaker,
    redis_client,
    redis_key,
    sticky_marker_key,
)
from marketing.common.queueing import delay_on_commit

logger = logging.getLogger(__name__)

STICKY_REBUILD_BATCH = 5_000
CANARY_SECONDS = 3_600
REBUILD_ASK_SECONDS = 30.0
STICKY_SECONDS = STICKY_DAYS * 86_400

# KEYS: the canary, then sticky keys; ARGV: the canary's token, the sticky TTL, the values.
# A key that exists keeps its value (what the customer is served) and gets a fresh TTL.
# Returns -1 when the canary is gone (Redis was flushed: the rebuild stops).
_WRITE_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local ttl = tonumber(ARGV[2])
for i = 2, #KEYS do
  if not redis.call('SET', KEYS[i], ARGV[i + 1], 'NX', 'EX', ttl) then
    redis.call('EXPIRE', KEYS[i], ttl)
  end
end
return #KEYS - 1
"""

# KEYS: the canary, the marker; ARGV: the canary's token, the marker's TTL.
_PUBLISH_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], '1', 'EX', tonumber(ARGV[2]))
redis.call('DEL', KEYS[1])
return 1
"""

_asked: dict[int, float] = {}


def _value(variant_id: int) -> str:
    """As serving's _sticky_value writes it: "h" for a held-out customer."""
    return "h" if variant_id == 0 else str(variant_id)


def _sticky(experiment_id: int, external_id: str) -> str:
    return redis_key(f"exp:s:{experiment_id}:{external_id}")


def sticky_marker_set(*, experiment_id: int) -> None:
    """Mark a bandit that has no exposure yet (just started) as complete."""
    try:
        redis_client().set(sticky_marker_key(experiment_id), 1, ex=MARKER_TTL_SECONDS)
    except redis.RedisError as exc:  # the first exposure asks the table and rebuilds
        breaker.failed("sticky marker", exc)


def sticky_marker_drop(*, experiment_id: int) -> None:
    try:
        redis_client().delete(sticky_marker_key(experiment_id))
    except redis.RedisError as exc:  # it expires on its own
        breaker.failed("sticky marker", exc)


def sticky_rebuild(*, experiment_id: int) -> int:
    """Write the sticky key of every exposure of the running experiment, then set its complete
    marker; returns the keys written, -1 when not running or when Redis lost the canary
    (flushed) meanwhile. Idempotent: existing keys keep their value."""
    if not selectors.experiment_is_running(experiment_id=experiment_id):
        return -1
    client = redis_client()
    canary = redis_key(f"exp:full:{experiment_id}:canary")
    token = secrets.token_hex(8)  # a concurrent rebuild takes the canary over: one publishes
    client.set(canary, token, ex=CANARY_SECONDS)
    write = client.register_script(_WRITE_LUA)
    written = 0
    for chunk in selectors.exposure_sticky_values(
        experiment_id=experiment_id, chunk=STICKY_REBUILD_BATCH
    ):
        keys = [_sticky(experiment_id, external_id) for external_id, _ in chunk]
        values = [_value(variant_id) for _, variant_id in chunk]
        done = write(keys=[canary, *keys], args=[token, STICKY_SECONDS, *values])
        if done < 0:
            return -1
        written += done
    if not client.eval(
        _PUBLISH_LUA, 2, canary, sticky_marker_key(experiment_id), token, MARKER_TTL_SECONDS
    ):
        return -1
    logger.info("sticky keys rebuilt", extra={"experiment": experiment_id, "keys": written})
    return written


def sticky_rebuild_soon(*, experiment_id: int) -> None:
    """Schedule one rebuild (at most one per experiment every REBUILD_ASK_SECONDS from this
    process), after commit."""
    from experiments.tasks import sticky_rebuild_task

    now = time.monotonic()
    if now - _asked.get(experiment_id, -REBUILD_ASK_SECONDS) < REBUILD_ASK_SECONDS:
        return
    _asked[experiment_id] = now
    delay_on_commit(sticky_rebuild_task, what="sticky rebuild", experiment_id=experiment_id)


def sticky_renamed_store(
    *, experiment_ids: list[int], customer_ids: list[int], sent_ids: list[str]
) -> None:
    """After exposures_flush stored records: a bandit's record that named its customer by an
    alias gets the key of the customer's external id too (with the stored variant, unless the
    key exists), as the table now answers for that id."""
    renamed = selectors.exposures_renamed(
        experiment_ids=experiment_ids, customer_ids=customer_ids, sent_ids=sent_ids
    )
    if not renamed:
        return
    # A Redis error propagates: the flush keeps the batch and a retry writes these keys.
    pipe = redis_client().pipeline(transaction=False)
    for experiment_id, external_id, variant_id in renamed:
        pipe.set(
            _sticky(experiment_id, external_id), _value(variant_id), nx=True, ex=STICKY_SECONDS
        )
    pipe.execute()

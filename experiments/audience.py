"""Experiment audiences in Redis, so that the assignment hot path checks a segment audience
inside its one Redis round trip (SISMEMBER in serving's Lua script) instead of asking
PostgreSQL (experiments.selectors.segment_has_member) on every call.

- The set `exp:aud:<segment>:<stamp>` holds what segment_has_member accepts: the external id
  of every member (not erased) and every alias of a member, plus the empty string, so that
  an audience with no members exists too. The stamp is the segment's `counted_at`, so a
  rematerialized segment gets a new set: serving reads the stamp with the config, and a
  rematerialization bumps the config generation (`audience_segment_changed`), so every
  process moves to the new set at once; a set built from an older membership is never read.
- A set that is missing (never built, expired after AUDIENCE_TTL_SECONDS, a flushed Redis)
  makes the call ask PostgreSQL as before and schedules one build (`audience_build_soon`).
- Between rematerializations, the few changes that move membership by id are applied to the
  live sets, after commit: a new alias (a merge moves the anonymous profile's aliases too)
  adds or removes the customer's ids (`audience_customer_refresh`); a deleted alias, an
  erased or deleted customer takes their ids out of every set (`audience_ids_forget`).
  An alias linked while its segment's set is being built can be missed until the next
  rematerialization (the build reads the membership before it publishes the set).
"""

from __future__ import annotations

import logging
import uuid

import redis
from django.db import transaction

from experiments import selectors
from experiments.serving import (
    audience_set_key,
    breaker,
    redis_client,
    redis_key,
)
from marketing.common.queueing import delay_on_commit

logger = logging.getLogger(__name__)

AUDIENCE_TTL_SECONDS = 86_400
BUILD_GUARD_SECONDS = 60
BUILD_CHUNK = 10_000
SENTINEL = ""

# Adds (ARGV[1] = "1") or removes (ARGV[1] = "0") ARGV[2..] in each set of KEYS that exists:
# a set being absent means "not built", which a partial set must never pretend otherwise.
_APPLY_LUA = """
local n = 0
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    for i = 2, #ARGV do
      if ARGV[1] == '1' then redis.call('SADD', key, ARGV[i])
      else redis.call('SREM', key, ARGV[i]) end
    end
    n = n + 1
  end
end
return n
"""


audience_key = audience_set_key


def audience_build(*, segment_id: int) -> int:
    """Build the segment's audience set for its current materialization; returns its size
    (-1 when the membership changed during the build: the next miss builds again)."""
    stamp = selectors.segment_stamp(segment_id=segment_id)
    if stamp is None:
        return -1
    key = audience_key(segment_id=segment_id, stamp=stamp)
    building = f"{key}:build:{uuid.uuid4().hex}"  # concurrent builds do not mix
    client = redis_client()
    client.sadd(building, SENTINEL)
    client.expire(building, AUDIENCE_TTL_SECONDS)  # a build that dies leaves no litter
    size = 0
    for chunk in selectors.segment_audience_ids(segment_id=segment_id, chunk=BUILD_CHUNK):
        client.sadd(building, *chunk)
        size += len(chunk)
    if selectors.segment_stamp(segment_id=segment_id) != stamp:
        client.delete(building)
        return -1
    pipe = client.pipeline()
    pipe.rename(building, key)
    pipe.expire(key, AUDIENCE_TTL_SECONDS)
    pipe.execute()
    logger.info("experiment audience built", extra={"segment": segment_id, "ids": size})
    return size


def audience_build_soon(*, segment_id: int) -> None:
    """Schedule one build of the segment's set (at most one a minute), after commit."""
    from experiments.tasks import audience_build_task

    try:
        if not redis_client().set(
            redis_key(f"exp:aud:{segment_id}:guard"), 1, nx=True, ex=BUILD_GUARD_SECONDS
        ):
            return
    except redis.RedisError as exc:
        breaker.failed("audience guard", exc)
        return
    delay_on_commit(audience_build_task, what="experiment audience build", segment_id=segment_id)


def _live_keys(segment_ids: list[int] | None = None) -> list[str]:
    return [
        audience_key(segment_id=segment_id, stamp=stamp)
        for segment_id, stamp in selectors.audience_segment_stamps(segment_ids=segment_ids)
    ]


def _apply(keys: list[str], ids: list[str], *, add: bool) -> None:
    if not keys or not ids or not breaker.available():
        return
    try:
        client = redis_client()
        client.eval(_APPLY_LUA, len(keys), *keys, "1" if add else "0", *ids)
    except redis.RedisError as exc:
        breaker.failed("audience update", exc)


def audience_customer_refresh(*, customer_id: int) -> None:
    """Put the customer's external id and aliases in the live sets of the audience segments
    they are a member of, and take them out of the others (after an alias was linked)."""
    stamps = selectors.audience_segment_stamps(segment_ids=None)
    if not stamps:
        return
    ids, member_of = selectors.customer_audience_ids(customer_id=customer_id)
    _apply(
        [audience_key(segment_id=s, stamp=t) for s, t in stamps if s in member_of], ids, add=True
    )
    _apply(
        [audience_key(segment_id=s, stamp=t) for s, t in stamps if s not in member_of],
        ids,
        add=False,
    )


def audience_ids_forget(*, ids: list[str], segment_ids: list[int] | None = None) -> None:
    """Take `ids` out of the live sets (of `segment_ids`, or of every audience segment)."""
    _apply(_live_keys(segment_ids), ids, add=False)


def audience_segment_changed(*, segment_id: int) -> None:
    """A rematerialized segment: when it is an experiment's audience, every process reloads
    its configs (with the new stamp, so the new set) and the new set is built."""
    from experiments.serving import experiment_cache_invalidate

    if not selectors.audience_segment_stamps(segment_ids=[segment_id]):
        return
    experiment_cache_invalidate()
    audience_build_soon(segment_id=segment_id)


# Signal receivers (cache invalidation only; connected in apps.py).


def on_snapshot_saved(sender, instance, created, **kwargs) -> None:
    """SegmentSnapshot: written by every membership change of a segment."""
    if created:
        segment_id = instance.segment_id
        transaction.on_commit(lambda: audience_segment_changed(segment_id=segment_id))


def on_alias_saved(sender, instance, **kwargs) -> None:
    customer_id = instance.customer_id
    transaction.on_commit(lambda: audience_customer_refresh(customer_id=customer_id))


def on_alias_deleted(sender, instance, **kwargs) -> None:
    alias = instance.alias
    transaction.on_commit(lambda: audience_ids_forget(ids=[alias]))


def on_customer_saving(sender, instance, **kwargs) -> None:
    """An erasure renames the customer (and deletes its memberships and aliases): take the
    old external id out of every set after commit."""
    if instance.pk is None or instance.erased_at is None:
        return
    old = selectors.customer_external_id(customer_id=instance.pk)
    if old is not None and old != instance.external_id:
        transaction.on_commit(lambda: audience_ids_forget(ids=[old]))


def on_customer_deleting(sender, instance, **kwargs) -> None:
    ids, _ = selectors.customer_audience_ids(customer_id=instance.pk)
    transaction.on_commit(lambda: audience_ids_forget(ids=ids))

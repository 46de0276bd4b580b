"""The assignment hot path: `experiment_assign_variant` answers in one Redis round trip
(two and a query for a bandit's first exposure when its complete marker is missing) and writes
nothing to PostgreSQL.

- Config: each process keeps the experiments it served in memory, stamped with the Redis
  generation it loaded them at. Every change (create, start, stop, reweight) bumps the
  generation (`experiment_cache_invalidate`, on commit), and the round trip of each
  assignment checks the stamp, so a stopped experiment stops everywhere at once.
- Stickiness and exposures: one Lua script checks the generation, reads the customer's
  sticky variant `exp:s:<experiment>:<customer>` and, for a first assignment, stores it and
  appends the exposure to the list `exp:exposures` that `exposures_flush` (a Celery task every
  few seconds) copies into PostgreSQL. Setting the sticky key is the "once": a customer's
  later calls find it and log nothing.
- Fixed weights need no state to be sticky (the hash decides); the key only deduplicates
  exposures, so losing it costs a repeated log line that the flush ignores. A bandit's
  weights move, so its sticky key is the truth. While the bandit's complete marker
  `exp:full:<experiment>` exists (experiments.sticky: set at start and by a rebuild from the
  exposure table; it expires before any key written after it, and a flushed Redis loses it
  with the keys; Redis must not evict keys), a missing key means a first exposure, stored by
  the same script run. Without the marker (expiry, a flushed Redis) the script only looks,
  the exposure table is asked before a new variant is drawn from the weights in force, and a
  rebuild of the keys and marker is queued (once per experiment and process every 30 s).
- Audience: the segment's Redis set (experiments.audience), checked by the same script
  (SISMEMBER) for customers the hashes let through; while the set is not built, the
  materialized membership (experiments.selectors.segment_has_member, one indexed query).
- Rate limit: the API's per-key counter (marketing.throttling.ApiKeyRateThrottle's) is
  incremented by the call's first script run when a quota is given, before anything else.
- Redis down: the hash still decides (sticky for fixed weights), nothing is logged, and the
  config is reloaded from PostgreSQL every LOCAL_TTL_SECONDS. Never an error.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis
from django.conf import settings
from django.db import transaction

from experiments import selectors
from experiments.assignment import (
    HOLDOUT,
    NOT_IN_AUDIENCE,
    Decision,
    ExperimentConfig,
    VariantConfig,
    decide,
)
from experiments.errors import ExperimentNotFoundError
from marketing.common.redis_breaker import RedisBreaker
from marketing.throttling import OverLimitError

if TYPE_CHECKING:
    from marketing.throttling import Quota

logger = logging.getLogger(__name__)

STICKY_DAYS = 120
LOCAL_TTL_SECONDS = 5.0
BREAKER_SECONDS = 2.0
SOCKET_TIMEOUT = 0.25
EXPOSURE_BUFFER = "exp:exposures"
GENERATION = "exp:gen"
# The complete marker lives a day less than a sticky key: a key written up to a day before
# the marker (an exposure still in the buffer when a rebuild read the table) outlives it too.
MARKER_TTL_SECONDS = (STICKY_DAYS - 1) * 86_400

# KEYS: generation, sticky key, exposure buffer, rate-limit counter, audience set, the
# experiment's complete marker (sticky_marker_key).
# ARGV: the generation the config was loaded at, the variant to store ("" = only look, "-" =
# only check the generation), the exposure record, the sticky TTL in seconds, the rate limit
# (0 = none: the counter is not touched), the counter's TTL in seconds, the customer id to
# find in the audience set ("" = no audience check), "1" = store only if the complete marker
# exists (else only look).
# Returns {4} over the rate limit (counted, nothing else done), {0} stale config, {5} the
# audience set is not built, {6} not in the audience, {1, value} already assigned, {2} not
# assigned (look only, or no marker) or generation current, {3, value} assigned now and
# logged.
_ASSIGN_LUA = """
local limit = tonumber(ARGV[5])
if limit > 0 then
  local count = redis.call('INCR', KEYS[4])
  redis.call('EXPIRE', KEYS[4], tonumber(ARGV[6]))
  if count > limit then return {4} end
end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0} end
if ARGV[7] ~= '' then
  if redis.call('EXISTS', KEYS[5]) == 0 then return {5} end
  if redis.call('SISMEMBER', KEYS[5], ARGV[7]) == 0 then return {6} end
end
if ARGV[2] == '-' then return {2} end
local old = redis.call('GET', KEYS[2])
if old then return {1, old} end
if ARGV[2] == '' then return {2} end
if ARGV[8] == '1' and redis.call('EXISTS', KEYS[6]) == 0 then return {2} end
redis.call('SET', KEYS[2], ARGV[2], 'EX', tonumber(ARGV[4]))
redis.call('RPUSH', KEYS[3], ARGV[3])
return {3, ARGV[2]}
"""
STALE, FOUND, MISSING, STORED, OVER_LIMIT, NO_AUDIENCE_SET, NOT_MEMBER = 0, 1, 2, 3, 4, 5, 6
GENERATION_ONLY = "-"


@dataclass(frozen=True)
class Assignment:
    experiment: str
    variant: str | None
    in_experiment: bool
    reason: str = ""


@dataclass
class _Cached:
    generation: str | None
    config: ExperimentConfig | None
    expires: float
    audience: str | None = None  # the audience set's key (experiments.audience)


_configs: dict[str, _Cached] = {}
breaker = RedisBreaker(
    logger=logger,
    message="experiment cache unavailable",
    socket_timeout=SOCKET_TIMEOUT,
    open_seconds=BREAKER_SECONDS,
)


def redis_key(name: str) -> str:
    return f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:{name}"


def sticky_marker_key(experiment_id: int) -> str:
    """The experiment's complete marker: while it exists, Redis holds the sticky key of every
    customer the exposure table knows for the experiment (experiments.sticky)."""
    return redis_key(f"exp:full:{experiment_id}")


def redis_client() -> redis.Redis:
    """One long-lived client per process with short timeouts (a hung Redis must not hang
    the assignment path)."""
    return breaker.client()


def _generation_read() -> str | None:
    """The current generation (created on first use); None when Redis is unavailable."""
    if not breaker.available():
        return None
    try:
        client = redis_client()
        raw = client.get(redis_key(GENERATION))
        if raw is None:
            client.set(redis_key(GENERATION), time.time_ns(), nx=True)
            raw = client.get(redis_key(GENERATION))
    except redis.RedisError as exc:
        breaker.failed("generation", exc)
        return None
    breaker.succeeded()
    return None if raw is None else _text(raw)


def experiment_cache_invalidate() -> None:
    """Make every process reload its experiment configs (run on commit of every change)."""
    _configs.clear()
    try:
        client = redis_client()
        if client.incr(redis_key(GENERATION)) == 1:  # the key was gone: restart from the clock
            client.set(redis_key(GENERATION), time.time_ns())
    except redis.RedisError as exc:
        breaker.failed("invalidate", exc)


def experiment_cache_invalidate_on_commit(**kwargs) -> None:
    """Connected to Experiment's and Variant's post_save and post_delete (see apps.py)."""
    transaction.on_commit(experiment_cache_invalidate)


def _config(key: str) -> _Cached:
    cached = _configs.get(key)
    if cached is not None and (cached.generation is not None or cached.expires > time.monotonic()):
        return cached
    generation = _generation_read()  # before the load: a change in between is seen as stale
    config = selectors.experiment_config(key=key)
    cached = _Cached(
        generation=generation,
        config=config,
        expires=time.monotonic() + LOCAL_TTL_SECONDS,
        audience=_audience(config),
    )
    if cached.config is not None:  # an unknown key is not cached: it may be created next
        _configs[key] = cached
    return cached


def audience_set_key(*, segment_id: int, stamp: str) -> str:
    """The audience set of the segment at its materialization `stamp` (experiments.audience
    builds and maintains it)."""
    return redis_key(f"exp:aud:{segment_id}:{stamp}")


def _audience(config: ExperimentConfig | None) -> str | None:
    if config is None or config.audience_segment_id is None:
        return None
    stamp = selectors.segment_stamp(segment_id=config.audience_segment_id)
    return (
        None
        if stamp is None
        else audience_set_key(segment_id=config.audience_segment_id, stamp=stamp)
    )


def _in_audience(segment_id: int, customer_id: str) -> bool:
    return selectors.segment_has_member(segment_id=segment_id, external_id=customer_id)


def _checked_in_script(segment_id: int, customer_id: str) -> bool:
    """The audience check left to the Lua script (the set holds the membership)."""
    return True


def _answer(config: ExperimentConfig, decision: Decision) -> Assignment:
    if decision.reason:
        return Assignment(config.key, None, False, decision.reason)
    assert decision.variant is not None  # noqa: S101 - decide() sets one when reason is ""
    return Assignment(config.key, decision.variant.key, True)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _from_sticky(config: ExperimentConfig, value: bytes | str, fallback: Decision) -> Assignment:
    text = _text(value)
    if text == "h":
        return Assignment(config.key, None, False, HOLDOUT)
    for variant in config.variants:
        if str(variant.id) == text:
            return Assignment(config.key, variant.key, True)
    return _answer(config, fallback)  # a variant deleted since: serve what the hash says


def _sticky_value(decision: Decision) -> str:
    return "h" if decision.variant is None else str(decision.variant.id)


def _record(config: ExperimentConfig, customer_id: str, decision: Decision) -> str:
    variant: VariantConfig | None = decision.variant
    return json.dumps(
        [config.id, customer_id, variant.id if variant else None, decision.propensity, time.time()]
    )


@dataclass
class _Limit:
    """The caller's quota, counted by the first script run of the call (then None)."""

    quota: Quota | None


def _run_script(
    generation: str,
    sticky: str,
    value: str,
    record: str,
    limit: _Limit,
    audience: tuple[str, str] | None = None,
    complete_marker: str | None = None,
) -> list:
    quota, limit.quota = limit.quota, None
    counter = redis_key(GENERATION) if quota is None else quota.key
    audience_set, member = audience or (redis_key(GENERATION), "")
    result = breaker.script(_ASSIGN_LUA)(
        keys=[
            redis_key(GENERATION),
            redis_key(sticky),
            redis_key(EXPOSURE_BUFFER),
            counter,
            audience_set,
            complete_marker or redis_key(GENERATION),
        ],
        args=[
            generation,
            value,
            record,
            STICKY_DAYS * 86_400,
            0 if quota is None else quota.limit,
            0 if quota is None else quota.expire_seconds,
            member,
            "0" if complete_marker is None else "1",
        ],
    )
    if quota is not None and result[0] == OVER_LIMIT:
        raise OverLimitError(max(0.0, quota.window_end - time.time()))
    return result


def _assign(cached: _Cached, customer_id: str, limit: _Limit) -> Assignment | None:
    """The assignment, or None when the config turned out stale."""
    config = cached.config
    assert config is not None  # noqa: S101 - the caller checked
    redis_ok = cached.generation is not None and breaker.available()
    # With Redis, the audience set is checked in the script's round trip (decide() then
    # assumes membership; the script answers "not in the audience" first).
    in_set = redis_ok and cached.audience is not None
    decision = decide(
        config,
        customer_id,
        global_control_percent=settings.CAMPAIGN_GLOBAL_CONTROL_PERCENT,
        in_audience=_checked_in_script if in_set else _in_audience,
    )
    if not redis_ok or cached.generation is None:
        return _answer(config, decision)  # no quota counted: fails open like the throttle
    generation, segment_id = cached.generation, config.audience_segment_id
    sticky = f"exp:s:{config.id}:{customer_id}"
    audience = (
        [(cached.audience, customer_id)] if cached.audience and in_set and decision.logged else []
    )

    def run(value: str, record: str, marker: str | None = None) -> tuple[int, list]:
        """The script, with the audience check in the call's first run; a set not built
        yet is asked of PostgreSQL (and built soon)."""
        check = audience.pop() if audience else None
        status, *rest = _run_script(generation, sticky, value, record, limit, check, marker)
        if status == NO_AUDIENCE_SET and segment_id is not None:
            _audience_missing(segment_id)
            if not _in_audience(segment_id, customer_id):
                return NOT_MEMBER, []
            status, *rest = _run_script(generation, sticky, value, record, limit, None, marker)
        return status, rest

    try:
        if not decision.logged:
            status, _ = run(GENERATION_ONLY, "")
            return None if status == STALE else _answer(config, decision)
        if config.adaptive and decision.variant is not None:
            # Stored at once when the complete marker vouches that no sticky key is missing.
            status, value = run(
                _sticky_value(decision),
                _record(config, customer_id, decision),
                sticky_marker_key(config.id),
            )
            if status == STALE:
                return None
            if status == NOT_MEMBER:
                return Assignment(config.key, None, False, NOT_IN_AUDIENCE)
            if status in (FOUND, STORED):
                return _from_sticky(config, value[0], decision)
            _sticky_incomplete(config.id)
            logged = selectors.exposure_variant_id(experiment_id=config.id, external_id=customer_id)
            if logged is not None:  # Redis forgot; the table remembers the first variant
                text = "h" if logged == 0 else str(logged)
                redis_client().set(redis_key(sticky), text, ex=STICKY_DAYS * 86_400)
                return _from_sticky(config, text, decision)
        status, value = run(_sticky_value(decision), _record(config, customer_id, decision))
    except redis.RedisError as exc:
        breaker.failed("assign", exc)
        if in_set:  # decided assuming membership: decide again with the table's answer
            return _assign(_Cached(None, config, 0.0), customer_id, limit)
        return _answer(config, decision)
    if status == STALE:
        return None
    if status == NOT_MEMBER:
        return Assignment(config.key, None, False, NOT_IN_AUDIENCE)
    return _from_sticky(config, value[0], decision)


def _sticky_incomplete(experiment_id: int) -> None:
    from experiments.sticky import sticky_rebuild_soon

    sticky_rebuild_soon(experiment_id=experiment_id)


def _audience_missing(segment_id: int) -> None:
    from experiments.audience import audience_build_soon

    audience_build_soon(segment_id=segment_id)


def experiment_assign_variant(
    *, key: str, customer_id: str, quota: Quota | None = None
) -> Assignment:
    """The customer's variant in the experiment `key` (see the module docstring); raises
    ExperimentNotFoundError for an unknown key. With `quota` (the API's per-key limit), the
    call is counted in the same Redis round trip, once, before anything is assigned, and
    OverLimitError is raised when it is over (not counted when Redis is unavailable or the
    key unknown)."""
    limit = _Limit(quota)
    for _ in range(3):
        cached = _config(key)
        if cached.config is None:
            raise ExperimentNotFoundError.for_key(key)
        answer = _assign(cached, customer_id, limit)
        if answer is not None:
            return answer
        _configs.pop(key, None)
    # Changes keep racing this call: decide on the freshest config without the stamp check.
    cached = _config(key)
    if cached.config is None:
        raise ExperimentNotFoundError.for_key(key)
    return _assign(_Cached(None, cached.config, 0.0), customer_id, limit) or Assignment(
        key, None, False
    )


def experiment_variant_config(*, key: str, variant: str) -> dict:
    """What the variant `variant` of the experiment `key` serves (Variant.config), from the
    process's cached config: no query on the warm path."""
    config = _config(key).config
    if config is None:
        raise ExperimentNotFoundError.for_key(key)
    return next((dict(v.config) for v in config.variants if v.key == variant), {})


@dataclass(frozen=True)
class CampaignExperiment:
    """A running experiment that picks a campaign's variants: its key, and each experiment
    variant's campaign variant (Variant.config["campaign_variant_id"])."""

    key: str
    campaign_variants: dict[str, int]


def campaign_experiment(*, campaign_id: int) -> CampaignExperiment | None:
    """The running experiment linked to the campaign, read once per dispatch batch."""
    experiment = selectors.experiment_for_campaign(campaign_id=campaign_id)
    if experiment is None:
        return None
    return CampaignExperiment(
        key=experiment.key,
        campaign_variants={
            v.key: int(v.config["campaign_variant_id"])
            for v in experiment.variants.all()
            if str(v.config.get("campaign_variant_id", "")).isdigit()
        },
    )


def campaign_variant_assign(linked: CampaignExperiment, *, customer_id: str) -> int | str | None:
    """The campaign variant id the experiment gives the customer (sticky; the first time is
    logged as their exposure, with its propensity), HOLDOUT when the experiment holds them
    out (they get no message), None when they are not in it (traffic share, audience, global
    control, stopped): the campaign's own split applies."""
    answer = experiment_assign_variant(key=linked.key, customer_id=customer_id)
    if answer.reason == HOLDOUT:
        return HOLDOUT
    if answer.variant is None:
        return None
    return linked.campaign_variants.get(answer.variant)

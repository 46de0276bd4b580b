"""The decision log and rewards of the offer ranker.

Why a Redis buffer: the rank endpoint must answer in a few milliseconds at hundreds of
requests per second, so it writes no PostgreSQL row. Each decision is RPUSHed as JSON, with a
marker key `offers:ev:<event_id>` (expiring after the reward wait) that lets the reward
endpoint accept a reward before the decision reaches PostgreSQL. Every few seconds
`offer_log_process` moves the buffer into OfferDecision (INSERT ... ON CONFLICT DO NOTHING on
the event id, the list trimmed only after the commit, under a session advisory lock: a crash
in between inserts nothing twice), applies the buffered rewards, then settles the decisions
whose wait is over with the default reward.

Rewards come from three places, the first one recorded wins (a reward is never
overwritten, so a retried call is harmless):
- `POST /api/v1/offers/reward` (buffered in a Redis hash, HSETNX);
- tracked events, read above a watermark like the dashboard's consumer: `offer_click` naming
  the decision (`properties.event_id`) or the offer (`item_id` or `properties.offer_id`),
  and `purchase` of the offered item, by the same customer within the wait;
- the default reward once the wait is over.
"""

import json
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import redis
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from marketing.throttling import OverLimitError, Quota
from profiles.models import Event
from recommender.models import OfferDecision
from recommender.offers_policy import redis_client, redis_key

logger = logging.getLogger(__name__)

PENDING_KEY = "offers:decisions"
REWARDS_KEY = "offers:rewards"
EVENT_WATERMARK_KEY = "offers:event_watermark"
FLUSH_BATCH_SIZE = 5_000
EVENTS_BATCH_SIZE = 10_000
LOG_LOCK = 7_300_021  # pg advisory lock: one log processor at a time
EVENT_SETTLE_SECONDS = 5
CLOCK_SKEW = timedelta(seconds=60)  # events carry the storefront's clock, decisions ours
MARKER_MARGIN_SECONDS = 300


def marker_key(event_id: str) -> str:
    return redis_key(f"offers:ev:{event_id}")


def counter_key(kind: str, offer_id: str) -> str:
    """Cap counters: `imp` / `red` totals (strings) and `impc` / `redc` per customer (hashes)."""
    return redis_key(f"offers:{kind}:{offer_id}")


def reward_wait() -> timedelta:
    return timedelta(seconds=settings.OFFERS_REWARD_WAIT_SECONDS)


# --- decisions: Redis buffer into PostgreSQL --------------------------------------------------


# KEYS: the rate-limit counter, the decision buffer, the decision's marker, then for each
# capped offer shown its impression total and per-customer hash. ARGV: the limit (0 = not
# counted), the counter's TTL, the record, the marker's TTL, the customer ref.
# Returns 0 over the limit (counted, nothing written), 1 written.
_BUFFER_LUA = """
local limit = tonumber(ARGV[1])
if limit > 0 then
  local count = redis.call('INCR', KEYS[1])
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
  if count > limit then return 0 end
end
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('SET', KEYS[3], 1, 'EX', tonumber(ARGV[4]))
for i = 4, #KEYS, 2 do
  redis.call('INCR', KEYS[i])
  redis.call('HINCRBY', KEYS[i + 1], ARGV[5], 1)
end
return 1
"""
_scripts: dict[int, Any] = {}


def _buffer_script(client: redis.Redis):
    script = _scripts.get(id(client))
    if script is None:
        script = _scripts[id(client)] = client.register_script(_BUFFER_LUA)
    return script


def _encoded(record: dict) -> bytes:
    """The record as compact JSON: orjson (a tenth of json's time for 20 candidates with
    their features), json for what orjson refuses (an integer beyond 64 bits)."""
    try:
        return orjson.dumps(record)
    except TypeError:
        return json.dumps(record, separators=(",", ":")).encode()


def decision_buffer(
    *,
    record: dict,
    impressions: Sequence[str],
    customer_ref: str,
    quota: Quota | None = None,
) -> None:
    """One round trip (a script): the call counted against `quota` (the API key's rate
    limit, when given), then the decision, its marker and the impressions of capped offers.
    Over the limit nothing is written and OverLimitError is raised. Redis unavailable: the
    decision goes straight into PostgreSQL and the call is not counted (the limiter fails
    open)."""
    keys = [
        quota.key if quota is not None else redis_key(PENDING_KEY),
        redis_key(PENDING_KEY),
        marker_key(record["event_id"]),
    ]
    for offer_id in impressions:
        keys += [counter_key("imp", offer_id), counter_key("impc", offer_id)]
    client = redis_client()
    try:
        written = _buffer_script(client)(
            keys=keys,
            args=[
                0 if quota is None else quota.limit,
                0 if quota is None else quota.expire_seconds,
                _encoded(record),
                settings.OFFERS_REWARD_WAIT_SECONDS + MARKER_MARGIN_SECONDS,
                customer_ref,
            ],
            client=client,
        )
    except redis.RedisError as exc:
        logger.warning(
            "offer log buffer unavailable, decision stored directly",
            extra={"error": f"{type(exc).__name__}: {exc}"[:300]},
        )
        decision_store(record=record)
        return
    if not written and quota is not None:
        raise OverLimitError(max(0.0, quota.window_end - time.time()))


def decision_store(*, record: dict) -> None:
    """Redis down: the decision straight into OfferDecision (one INSERT, slower than the
    buffer), so the learner still gets it and a reward finds it in PostgreSQL."""
    OfferDecision.objects.bulk_create([_decision_row(record)], ignore_conflicts=True)


def _decision_row(record: dict) -> OfferDecision:
    return OfferDecision(
        event_id=uuid.UUID(record["event_id"]),
        created_at=datetime.fromtimestamp(record["at"], tz=UTC),
        customer_id=record["customer"],
        customer_ref=record["customer_ref"],
        placement=record["placement"],
        context=record["context"],
        customer_features=record["features"],
        candidates=record["candidates"],
        ranking=record["ranking"],
        chosen_id=record["candidates"][record["chosen"]]["id"],
        chosen_index=record["chosen"],
        chosen_item=record["item"],
        probability=record["probability"],
        mode=record["mode"],
        model_version=record["version"],
        experiment=record.get("experiment", ""),  # decisions buffered before 0004 have none
        variant=record.get("variant", ""),
    )


@dataclass(frozen=True)
class LogResult:
    flushed: int = 0
    rewards: int = 0
    event_rewards: int = 0
    settled: int = 0
    locked_out: bool = False


def _try_lock(cursor) -> bool:
    cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOG_LOCK])
    return bool(cursor.fetchone()[0])


def decisions_flush(*, limit: int = FLUSH_BATCH_SIZE) -> int:
    """Buffered decisions into OfferDecision; call with LOG_LOCK held."""
    client = redis_client()
    raw = client.lrange(redis_key(PENDING_KEY), 0, limit - 1)
    if not raw:
        return 0
    rows = []
    for entry in raw:
        try:
            rows.append(_decision_row(json.loads(entry)))
        except (ValueError, KeyError, IndexError, TypeError):
            logger.exception("malformed offer decision dropped")
    with transaction.atomic():
        OfferDecision.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
    client.ltrim(redis_key(PENDING_KEY), len(raw), -1)
    return len(rows)


# --- rewards -----------------------------------------------------------------------------------

# Buffer the reward only while the decision's marker lives; 1 = recorded, 0 = a reward was
# already recorded, -1 = no marker (flushed long ago, or unknown).
_REWARD_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
return redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2])
"""

RECORDED, DUPLICATE, CLOSED, UNKNOWN = "recorded", "duplicate", "closed", "unknown"


def reward_record(*, event_id: uuid.UUID, reward: float, source: str = "api") -> str:
    """Record a reward for one decision; returns RECORDED, DUPLICATE (a reward was already
    recorded: idempotent), CLOSED (the wait is over and the default reward was given) or
    UNKNOWN (no such decision)."""
    client = redis_client()
    key = str(event_id)
    value = json.dumps([reward, source, time.time()])
    try:
        outcome = client.eval(_REWARD_LUA, 2, marker_key(key), redis_key(REWARDS_KEY), key, value)
    except redis.RedisError as exc:  # Redis down: the decision is in PostgreSQL, if anywhere
        logger.warning("offer reward buffer unavailable", extra={"error": str(exc)[:300]})
        outcome = -1
    if outcome == 1:
        return RECORDED
    if outcome == 0:
        return DUPLICATE
    # The marker is gone: the decision is in PostgreSQL, if anywhere.
    updated = OfferDecision.objects.filter(
        event_id=event_id, reward__isnull=True, created_at__gte=timezone.now() - reward_wait()
    ).update(reward=reward, reward_source=source, rewarded_at=timezone.now())
    if updated:
        return RECORDED
    decision = OfferDecision.objects.filter(event_id=event_id).only("reward_source").first()
    if decision is None:
        return UNKNOWN
    return CLOSED if decision.reward_source == "default" else DUPLICATE


_APPLY_SQL = """
UPDATE recommender_offerdecision d
SET reward = v.reward, reward_source = v.source, rewarded_at = %(now)s
FROM unnest(%(ids)s::uuid[], %(rewards)s::float8[], %(sources)s::text[]) AS v(id, reward, source)
WHERE d.event_id = v.id AND d.reward IS NULL
"""


def rewards_apply(*, now: datetime) -> int:
    """Buffered API rewards onto their flushed decisions; rewards whose decision is not in
    PostgreSQL yet stay buffered until the wait is over."""
    client = redis_client()
    buffered = client.hgetall(redis_key(REWARDS_KEY))
    if not buffered:
        return 0
    ids, rewards, sources, stamps = [], [], [], []
    for raw_id, raw_value in buffered.items():
        reward, source, at = json.loads(raw_value)
        ids.append(raw_id.decode() if isinstance(raw_id, bytes) else raw_id)
        rewards.append(float(reward))
        sources.append(source)
        stamps.append(at)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_APPLY_SQL, {"now": now, "ids": ids, "rewards": rewards, "sources": sources})
        applied = cursor.rowcount
        stored = {
            str(e)
            for e in OfferDecision.objects.filter(event_id__in=ids).values_list(
                "event_id", flat=True
            )
        }
    expired = now.timestamp() - settings.OFFERS_REWARD_WAIT_SECONDS - MARKER_MARGIN_SECONDS
    done = [i for i, at in zip(ids, stamps, strict=True) if i in stored or at < expired]
    if done:
        client.hdel(redis_key(REWARDS_KEY), *done)
    return applied


# One event rewards one decision: the one it names, else the customer's latest unrewarded
# decision that showed the offer (or the purchased item) first within the wait.
_REWARD_BY_EVENT_ID_SQL = """
UPDATE recommender_offerdecision SET reward = 1, reward_source = %(source)s, rewarded_at = %(now)s
WHERE event_id = %(decision)s AND reward IS NULL
RETURNING chosen_id, customer_ref
"""
_REWARD_BY_MATCH_SQL = """
UPDATE recommender_offerdecision SET reward = 1, reward_source = %(source)s, rewarded_at = %(now)s
WHERE id = (
    SELECT id FROM recommender_offerdecision
    WHERE customer_ref = %(ref)s AND reward IS NULL
      AND created_at <= %(at)s::timestamptz + %(skew)s
      AND created_at > %(at)s::timestamptz - %(wait)s
      AND (chosen_id = %(offer)s OR chosen_item = %(item)s)
    ORDER BY created_at DESC, id DESC
    LIMIT 1
    FOR UPDATE SKIP LOCKED
)
RETURNING chosen_id, customer_ref
"""


def _uuid_or_none(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def _event_watermark_start() -> int:
    last = Event.objects.order_by("-pk").values_list("pk", flat=True).first()
    return int(last or 0)


def event_rewards_consume(*, now: datetime, limit: int = EVENTS_BATCH_SIZE) -> int:
    """Rewards from settled offer_click / purchase events above the watermark; call with
    LOG_LOCK held (after the flush, so the decisions they answer are in PostgreSQL)."""
    client = redis_client()
    stored = client.get(redis_key(EVENT_WATERMARK_KEY))
    watermark = int(stored) if stored is not None else _event_watermark_start()
    rows = list(
        Event.objects.filter(pk__gt=watermark)
        .order_by("pk")
        .values_list(
            "pk", "type", "customer__external_id", "item_external_id", "properties",
            "occurred_at", "received_at",
        )[:limit]
    )  # fmt: skip
    settle_from = now - timedelta(seconds=EVENT_SETTLE_SECONDS)
    settled = []
    for row in rows:
        if row[6] > settle_from:
            break
        settled.append(row)
    if not settled:
        if stored is None:
            client.set(redis_key(EVENT_WATERMARK_KEY), watermark)
        return 0
    rewarded: list[tuple[str, str, str]] = []
    common: dict[str, Any] = {"now": now, "skew": CLOCK_SKEW, "wait": reward_wait()}
    with transaction.atomic(), connection.cursor() as cursor:
        for _pk, event_type, ref, item, properties, occurred_at, _received in settled:
            properties = properties if isinstance(properties, dict) else {}
            if event_type == "offer_click":
                offer_id = str(properties.get("offer_id") or item)
                # NULL equals nothing: a click matches by offer only, a purchase by item.
                params: dict[str, Any] = {"source": "click", "offer": offer_id, "item": None}
            elif event_type == "purchase" and item:
                params = {"source": "purchase", "offer": None, "item": item}
            else:
                continue
            decision = _uuid_or_none(properties.get("event_id"))
            if decision is not None:
                cursor.execute(_REWARD_BY_EVENT_ID_SQL, {**common, **params, "decision": decision})
            else:
                cursor.execute(
                    _REWARD_BY_MATCH_SQL, {**common, **params, "ref": ref, "at": occurred_at}
                )
            row = cursor.fetchone()
            if row is not None:
                rewarded.append((row[0], row[1], params["source"]))
    pipe = client.pipeline(transaction=True)
    for offer_id, customer_ref, source in rewarded:
        if source == "purchase":
            pipe.incr(counter_key("red", offer_id))
            pipe.hincrby(counter_key("redc", offer_id), customer_ref, 1)
    pipe.set(redis_key(EVENT_WATERMARK_KEY), settled[-1][0])
    pipe.execute()
    return len(rewarded)


def decisions_settle(*, now: datetime) -> int:
    """The default reward for decisions whose wait is over without one."""
    return OfferDecision.objects.filter(
        reward__isnull=True, created_at__lt=now - reward_wait()
    ).update(reward=settings.OFFERS_DEFAULT_REWARD, reward_source="default", rewarded_at=now)


def offer_log_process(*, now: datetime | None = None) -> LogResult:
    """Flush, rewards (API, events), settle: one pass, one processor at a time (a second
    worker returns at once). Every step is safe to repeat."""
    now = now or timezone.now()
    with connection.cursor() as cursor:
        if not _try_lock(cursor):
            return LogResult(locked_out=True)
        try:
            flushed = 0
            while True:
                batch = decisions_flush()
                flushed += batch
                if batch < FLUSH_BATCH_SIZE:
                    break
            rewards = rewards_apply(now=now)
            event_rewards = event_rewards_consume(now=now)
            settled = decisions_settle(now=now)
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [LOG_LOCK])
    return LogResult(flushed=flushed, rewards=rewards, event_rewards=event_rewards, settled=settled)


def offer_counters(*, offer_ids: Sequence[str], customer_ref: str) -> dict[str, dict[str, int]]:
    """The live cap counters of some offers, for one customer, in one round trip."""
    pipe = redis_client().pipeline(transaction=False)
    for offer_id in offer_ids:
        pipe.get(counter_key("imp", offer_id))
        pipe.hget(counter_key("impc", offer_id), customer_ref)
        pipe.get(counter_key("red", offer_id))
        pipe.hget(counter_key("redc", offer_id), customer_ref)
    values = pipe.execute()
    out = {}
    for n, offer_id in enumerate(offer_ids):
        imp, impc, red, redc = (int(v or 0) for v in values[4 * n : 4 * n + 4])
        out[offer_id] = {
            "max_impressions": imp,
            "max_impressions_per_customer": impc,
            "max_redemptions": red,
            "max_redemptions_per_customer": redc,
        }
    return out

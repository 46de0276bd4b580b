"""Live dashboard counters: events into per-minute Redis counters, flushed into MetricRollup.

    rollup_events_consume()   new events -> HINCRBY on the hash of their minute, PFADD of the
                              customer into minute / hour / day HyperLogLogs (woken by
                              events_ingest on commit, debounced; beat every minute too)
    rollups_flush()           Redis minute hashes -> MetricRollup rows of the minute, its hour
                              and its day (beat every minute); the minutes of messages since
                              the last flush recounted; old rows pruned
    rollups_rebuild()         a backfill from the raw events (history imports, a lost Redis,
                              the benchmark): the only function here that scans events
    rollup_recommendations_served()  one list served by the recommendations API -> the same
                              minute hash (lists, items, category diversity) and HyperLogLogs
                              of the distinct items recommended per minute / hour / day

Recommendations: the API counts what it serves (no event is stored for an impression); a
click on a recommended item is a `click` or `view` event whose properties carry `rec_id` or
`recommendation_id`, or whose `source` is `recommendation(s)` or starts with `rec_`, counted by
the consumer as `rec_clicks`. Served counts exist only in the rollups, so rollups_rebuild keeps
them (and rebuilds the clicks from the events).

Why Redis first: an ingest of 1,000 events must not update a hot rollup row per event in
PostgreSQL (row locks, dead tuples); a pipeline of HINCRBY per (minute, field) costs one round
trip per batch, and distinct active customers need HyperLogLogs anyway (PFCOUNT over 60
minute keys is the distinct count of an hour, which no sum of counters gives).

Reading the stream: the events_committed hook carries no rows, so the consumer reads events
above a watermark (an Event pk kept in Redis) through the primary key, as the journey consumer
does, one consumer at a time (a PostgreSQL advisory lock). Counters are not idempotent, so it
counts each event once: it stops before the first event received less than SETTLE_SECONDS ago
(an ingest transaction with a lower pk may still commit), and the increments and the new
watermark go to Redis in one MULTI/EXEC. An ingest transaction that takes longer than
SETTLE_SECONDS to commit is missed, as in journeys.

Flushing, exactly once: a Lua script renames each dirty minute hash to a pending key named by
a fresh token (atomically with the consumer's MULTI, so an increment lands either in the
renamed hash or in a new one). Each pending hash is added to PostgreSQL in a transaction that
also records its token in RollupFlush; a flush that crashed after the commit finds the token
and only deletes the key. Additive upserts let late events (a storefront's offline batch)
land in old buckets.

Messages are counted by a different route, chosen because dispatch and the webhooks are
campaigns' code: each flush recounts, from the Message table's stage timestamps (sent,
delivered, opened, clicked, converted), only the minutes since its previous pass (minus a
ten-minute overlap for outcomes stamped a little in the past), one range per stage over that
stage's partial index, grouped by minute and channel, and writes absolute values (idempotent
by construction). The hour and day rows are sums of the minute and hour rows, not of
messages. Once an hour the minutes since the start of yesterday are recounted, for outcomes
that arrive later (webhook retries) and after a lost Redis; an outcome stamped more than a day
before it is recorded is missed by the dashboard (the campaign report counts messages).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import redis
from django.conf import settings
from django.db import connection, transaction
from django.db.models import BooleanField, ExpressionWrapper
from django.utils import timezone

from marketing.common.redis_breaker import RedisBreaker
from marketing.rollups_models import RollupFlush, RollupGrain
from profiles.models import Event
from profiles.selectors_events import (
    REC_CLICK_TYPES,
    REC_ID_PROPERTIES,
    REC_SOURCE_PREFIX,
    REC_SOURCES,
    rec_click_q,
)

logger = logging.getLogger(__name__)

ROLLUP_EVENTS_BATCH_SIZE = 20_000
ROLLUPS_LOCK = 7_300_011  # pg advisory lock: one event consumer at a time
FLUSH_LOCK = 7_300_012  # and one flush
SETTLE_SECONDS = 5
GOAL_TYPES = ("purchase",)
ITEM_TYPES = {"view": "item_view", "click": "item_view", "purchase": "item_purchase"}
OFFER_TYPES = ("offer_shown", "offer_click")
MESSAGE_STAGES = ("sent", "delivered", "opened", "clicked", "converted")
# Counted from what the recommendations API serves, not from events: a rebuild keeps them.
SERVED_METRICS = ("rec_lists", "rec_items", "rec_ild", "rec_ild_lists", "rec_distinct")
# Minute-only metrics would be too many rows per item or offer; those keep hours and days.
HOURLY_ONLY = ("item_view", "item_purchase", "offer_shown", "offer_click")
RETENTION = {
    RollupGrain.MINUTE: timedelta(days=3),
    RollupGrain.HOUR: timedelta(days=62),
    RollupGrain.DAY: timedelta(days=800),
}
HLL_TTL = {"m": 3 * 3600, "h": 3 * 86400, "d": 40 * 86400}
STEP = {"m": 60, "h": 3600, "d": 86400}

WATERMARK_KEY = "rollups:event_watermark"
DIRTY_KEY = "rollups:dirty"
PENDING_KEY = "rollups:pending"

_state: dict = {"client": None, "location": None}
_lock = threading.Lock()
# The serving path's client: short timeouts, skipped for a while after an error.
served_breaker = RedisBreaker(logger=logger, message="recommendation counters not updated")


def redis_name(name: str) -> str:
    return f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:{name}"


def redis_client() -> redis.Redis:
    """One client per process, built from the cache's Redis location."""
    location = settings.CACHES["default"]["LOCATION"]
    if _state["location"] != location:
        with _lock:
            _state.update(
                client=redis.Redis.from_url(location, socket_timeout=5, socket_connect_timeout=5),
                location=location,
            )
    return _state["client"]


def live_key(minute: int) -> str:
    return redis_name(f"rollups:m:{minute}")


def hll_key(grain: str, bucket: int) -> str:
    return redis_name(f"rollups:hll:{grain}:{bucket}")


def rec_hll_key(grain: str, bucket: int) -> str:
    """Distinct items recommended in a bucket (catalog coverage of a window: a PFCOUNT union)."""
    return redis_name(f"rollups:rechll:{grain}:{bucket}")


def floor_epoch(epoch: float, grain: str) -> int:
    step = STEP[grain]
    return int(epoch // step * step)


# --- events into Redis -------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsumeResult:
    events: int
    more: bool = False
    locked_out: bool = False


def _fields(
    event_type: str, value: Decimal | None, item: str, rec: bool = False
) -> Iterable[tuple[str, float]]:
    """The counter fields (metric|key) one event adds to."""
    yield f"events|{event_type}", 1
    if rec:
        yield "rec_clicks|", 1
    if event_type in GOAL_TYPES:
        yield "conversions|", 1
        if value is not None:
            yield "revenue|", float(value)
    if item and event_type in ITEM_TYPES:
        yield f"{ITEM_TYPES[event_type]}|{item}", 1
    if item and event_type in OFFER_TYPES:
        yield f"{event_type}|{item}", 1


def rollup_events_consume(
    *, limit: int = ROLLUP_EVENTS_BATCH_SIZE, now: datetime | None = None
) -> ConsumeResult:
    """Count up to `limit` settled new events into the Redis minute counters. Safe from several
    workers (one gets the lock) and to run twice (the watermark moves with the counts)."""
    now = now or timezone.now()
    client = redis_client()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [ROLLUPS_LOCK])
        if not cursor.fetchone()[0]:
            return ConsumeResult(events=0, locked_out=True)
        stored = client.get(redis_name(WATERMARK_KEY))
        watermark = int(stored) if stored is not None else _watermark_start(now)
        rows = list(
            Event.objects.filter(pk__gt=watermark)
            .annotate(rec=_rec_click())
            .order_by("pk")
            .values_list(
                "pk", "type", "customer_id", "occurred_at", "received_at", "value",
                "item_external_id", "rec",
            )[:limit]
        )  # fmt: skip
    settle_from = now - timedelta(seconds=SETTLE_SECONDS)
    settled = [r for r in rows if r[4] <= settle_from]
    if len(settled) < len(rows):
        first_unsettled = next(i for i, r in enumerate(rows) if r[4] > settle_from)
        settled = rows[:first_unsettled]
    if not settled:
        if stored is None:
            client.set(redis_name(WATERMARK_KEY), watermark)
        return ConsumeResult(events=0)
    counters: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    customers: dict[tuple[str, int], set[int]] = defaultdict(set)
    for _pk, event_type, customer_id, occurred_at, _received, value, item, rec in settled:
        epoch = occurred_at.timestamp()
        minute = floor_epoch(epoch, "m")
        for field_name, amount in _fields(event_type, value, item, rec):
            counters[minute][field_name] += amount
        for grain in ("m", "h", "d"):
            customers[(grain, floor_epoch(epoch, grain))].add(customer_id)
    pipe = client.pipeline(transaction=True)
    for minute, fields in counters.items():
        key = live_key(minute)
        for field_name, amount in fields.items():
            if float(amount).is_integer():
                pipe.hincrby(key, field_name, int(amount))
            else:
                pipe.hincrbyfloat(key, field_name, amount)
        pipe.sadd(redis_name(DIRTY_KEY), minute)
    for (grain, bucket), ids in customers.items():
        pipe.pfadd(hll_key(grain, bucket), *ids)
        pipe.expire(hll_key(grain, bucket), HLL_TTL[grain])
    pipe.set(redis_name(WATERMARK_KEY), settled[-1][0])
    pipe.execute()
    return ConsumeResult(events=len(settled), more=len(rows) == limit and len(settled) == limit)


def _rec_click() -> ExpressionWrapper:
    """True for a click on a recommended item (the events list's rule; rollups_rebuild's SQL
    says the same)."""
    return ExpressionWrapper(rec_click_q(), output_field=BooleanField())


def category_diversity(categories: Sequence[str]) -> float:
    """Intra-list diversity of one list with categories as the item similarity: the share of
    pairs of items from different categories (0: all alike, 1: all different)."""
    n = len(categories)
    if n < 2:
        return 0.0
    same = sum(c * (c - 1) for c in Counter(categories).values())
    return 1.0 - same / (n * (n - 1))


# KEYS: the minute's live hash, the dirty set, the HyperLogLogs of the minute, hour and day.
# ARGV: items, the list's category diversity ('' for a single item), the minute, the three
# HyperLogLogs' lifetimes, then the item ids.
_SERVED_LUA = """
redis.call('HINCRBY', KEYS[1], 'rec_lists|', 1)
redis.call('HINCRBY', KEYS[1], 'rec_items|', ARGV[1])
if ARGV[2] ~= '' then
  redis.call('HINCRBYFLOAT', KEYS[1], 'rec_ild|', ARGV[2])
  redis.call('HINCRBY', KEYS[1], 'rec_ild_lists|', 1)
end
redis.call('SADD', KEYS[2], ARGV[3])
for i = 1, 3 do
  redis.call('PFADD', KEYS[2 + i], unpack(ARGV, 7))
  redis.call('EXPIRE', KEYS[2 + i], ARGV[3 + i])
end
return 1
"""


def rollup_recommendations_served(
    *, items: Sequence[tuple[str, str]], now: datetime | None = None
) -> None:
    """Count one served list of (item id, category) into the current minute: lists, items
    (impressions), the list's category diversity, and the items into the HyperLogLogs of
    distinct recommended items. One Redis round trip on the serving path, with short
    timeouts; a Redis error opens a breaker (the lists of the next seconds go uncounted
    without trying Redis, logged once per outage): serving never fails nor waits for a
    counter."""
    if not items or not served_breaker.available():
        return
    epoch = (now or timezone.now()).timestamp()
    minute = floor_epoch(epoch, "m")
    grains = ("m", "h", "d")
    try:
        # One script: the flush's Lua claim sees the increments and the dirty mark together.
        served_breaker.script(_SERVED_LUA)(
            keys=[
                live_key(minute),
                redis_name(DIRTY_KEY),
                *(rec_hll_key(grain, floor_epoch(epoch, grain)) for grain in grains),
            ],
            args=[
                len(items),
                repr(category_diversity([c for _, c in items])) if len(items) > 1 else "",
                minute,
                *(HLL_TTL[grain] for grain in grains),
                *(item_id for item_id, _ in items),
            ],
        )
    except redis.RedisError as exc:
        served_breaker.failed("rollup_recommendations_served", exc)
        return
    served_breaker.succeeded()


def _watermark_start(now: datetime) -> int:
    """No watermark yet (a new install, a flushed Redis): start after the events already
    stored; history reaches the rollups through rollups_rebuild, not the live counters."""
    last = Event.objects.order_by("-pk").values_list("pk", flat=True).first()
    return int(last or 0)


# --- Redis into PostgreSQL ---------------------------------------------------------------------

# Rename every dirty minute hash to a pending key of this flush, atomically.
_CLAIM_LUA = """
local claimed = {}
for _, minute in ipairs(redis.call('SMEMBERS', KEYS[1])) do
    local live = ARGV[1] .. minute
    redis.call('SREM', KEYS[1], minute)
    if redis.call('EXISTS', live) == 1 then
        local pending = ARGV[2] .. minute
        redis.call('RENAME', live, pending)
        redis.call('SADD', KEYS[2], pending)
        table.insert(claimed, pending)
    end
end
return claimed
"""

_UPSERT_ADD = """
INSERT INTO marketing_metricrollup (grain, bucket, metric, key, value)
SELECT * FROM unnest(%s::text[], %s::timestamptz[], %s::text[], %s::text[], %s::float8[])
ON CONFLICT (grain, metric, bucket, key)
DO UPDATE SET value = marketing_metricrollup.value + EXCLUDED.value
"""

_UPSERT_SET = """
INSERT INTO marketing_metricrollup (grain, bucket, metric, key, value)
SELECT * FROM unnest(%s::text[], %s::timestamptz[], %s::text[], %s::text[], %s::float8[])
ON CONFLICT (grain, metric, bucket, key) DO UPDATE SET value = EXCLUDED.value
"""

GRAIN_NAMES = {"m": RollupGrain.MINUTE, "h": RollupGrain.HOUR, "d": RollupGrain.DAY}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _at(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def _upsert(sql: str, rows: list[tuple[str, datetime, str, str, float]]) -> None:
    if not rows:
        return
    columns = [list(c) for c in zip(*rows, strict=True)]
    with connection.cursor() as cursor:
        cursor.execute(sql, columns)


def _rows_of_minute(minute: int, fields: dict[str, float]) -> list[tuple]:
    """The rows a minute's counters add to: the minute, its hour and its day."""
    rows = []
    for name, amount in fields.items():
        metric, _, key = name.partition("|")
        grains = ("h", "d") if metric in HOURLY_ONLY else ("m", "h", "d")
        rows += [
            (GRAIN_NAMES[g].value, _at(floor_epoch(minute, g)), metric, key, amount) for g in grains
        ]
    return _merge(rows)


def _merge(rows: list[tuple]) -> list[tuple]:
    """One row per (grain, bucket, metric, key): an upsert may not touch a row twice."""
    merged: dict[tuple, float] = defaultdict(float)
    for grain, bucket, metric, key, amount in rows:
        merged[(grain, bucket, metric, key)] += amount
    return [(*k, v) for k, v in merged.items()]


@dataclass(frozen=True)
class FlushResult:
    minutes: int
    rows: int
    locked_out: bool = False


def rollups_flush(*, now: datetime | None = None) -> FlushResult:
    """Move the Redis minute counters into MetricRollup, refresh the active-customer and
    message rows, prune old rows. Idempotent (see the module docstring)."""
    now = now or timezone.now()
    client = redis_client()
    done: list[str] = []
    flushed_rows = 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [FLUSH_LOCK])
        if not cursor.fetchone()[0]:
            return FlushResult(minutes=0, rows=0, locked_out=True)
        token = uuid.uuid4().hex
        client.eval(
            _CLAIM_LUA,
            2,
            redis_name(DIRTY_KEY),
            redis_name(PENDING_KEY),
            redis_name("rollups:m:"),
            redis_name(f"rollups:p:{token}:"),
        )
        pending = sorted(_text(k) for k in client.smembers(redis_name(PENDING_KEY)))
        applied = set(RollupFlush.objects.filter(token__in=pending).values_list("token", flat=True))
        rows: list[tuple] = []
        touched: set[int] = set()
        for key in pending:
            done.append(key)
            if key in applied:  # added by a flush that stopped before deleting its keys
                continue
            minute = int(key.rsplit(":", 1)[1])
            touched.add(minute)
            fields = {_text(k): float(v) for k, v in client.hgetall(key).items()}
            rows += _rows_of_minute(minute, fields)
        RollupFlush.objects.bulk_create(
            [RollupFlush(token=key, flushed_at=now) for key in pending if key not in applied]
        )
        rows = _merge(rows)
        _upsert(_UPSERT_ADD, rows)
        flushed_rows = len(rows)
        _active_refresh(client, touched)
        messages_rollup(now=now)
        _prune(now)
    if done:
        # Only after the commit: a crash before it leaves the keys for the next flush.
        pipe = client.pipeline(transaction=True)
        pipe.delete(*done)
        pipe.srem(redis_name(PENDING_KEY), *done)
        pipe.execute()
    return FlushResult(minutes=len(done), rows=flushed_rows)


def _active_refresh(client: redis.Redis, minutes: set[int]) -> None:
    """Distinct customers and distinct recommended items of each touched minute, hour and
    day, from their HyperLogLogs."""
    buckets = {(g, floor_epoch(m, g)) for m in minutes for g in ("m", "h", "d")}
    rows = []
    for grain, bucket in sorted(buckets):
        for metric, key_of in (("active", hll_key), ("rec_distinct", rec_hll_key)):
            count = client.pfcount(key_of(grain, bucket))
            if count:
                rows.append((GRAIN_NAMES[grain].value, _at(bucket), metric, "", float(count)))
    _upsert(_UPSERT_SET, rows)


# One range per stage over that stage's partial index (campaigns' message_<stage>_partial,
# rows with the timestamp set): the recent minutes of each stage, never the whole table.
_MESSAGE_STAGE_COUNTS = " UNION ALL ".join(
    f"""(SELECT date_trunc(%(unit)s, {stage}_at), channel, '{stage}', count(*)
        FROM campaigns_message WHERE {stage}_at >= %(since)s AND {stage}_at < %(until)s
        GROUP BY 1, 2)"""  # noqa: S608 - column names from the MESSAGE_STAGES constant
    for stage in MESSAGE_STAGES
)

_MESSAGES_DELETE = """
DELETE FROM marketing_metricrollup
WHERE grain = %s AND metric = 'messages' AND bucket >= %s AND bucket < %s
"""

# A coarser grain summed from the finer one's rows (a few thousand rows a day, not messages).
_MESSAGES_DERIVE = """
INSERT INTO marketing_metricrollup (grain, bucket, metric, key, value)
SELECT %(grain)s, date_trunc(%(unit)s, bucket), 'messages', key, sum(value)
FROM marketing_metricrollup
WHERE grain = %(source)s AND metric = 'messages' AND bucket >= %(since)s AND bucket < %(until)s
GROUP BY 2, 4
"""

MESSAGES_THROUGH_KEY = "rollups:messages_through"  # epoch: counted up to here
MESSAGES_REBUILT_KEY = "rollups:messages_rebuilt"  # epoch of the hour of the last recount
# Minutes recounted before the last pass's end: outcomes stamped a little in the past (the
# sweeper's confirmed sends keep their claim time, webhooks their event time).
MESSAGES_OVERLAP = timedelta(minutes=10)
# Once an hour the minutes since the start of yesterday are recounted, for later outcomes
# (SendGrid retries a webhook delivery for hours) and a lost Redis.
MESSAGES_LATE = timedelta(days=1)


def _messages_count(cursor: Any, *, unit: str, since: datetime, until: datetime) -> list[tuple]:
    cursor.execute(_MESSAGE_STAGE_COUNTS, {"unit": unit, "since": since, "until": until})
    grain = {"minute": RollupGrain.MINUTE, "hour": RollupGrain.HOUR}[unit].value
    return [
        (grain, bucket, "messages", f"{channel}:{stage}", float(count))
        for bucket, channel, stage, count in cursor.fetchall()
    ]


def _messages_derive(
    cursor: Any, *, grain: RollupGrain, source: RollupGrain, since: datetime, until: datetime
) -> None:
    cursor.execute(_MESSAGES_DELETE, [grain.value, since, until])
    cursor.execute(
        _MESSAGES_DERIVE,
        {"grain": grain.value, "unit": grain.value, "source": source.value, "since": since,
         "until": until},
    )  # fmt: skip


def _day_start(at: datetime) -> datetime:
    return _at(floor_epoch(at.timestamp(), "d"))


def messages_rollup(*, now: datetime | None = None, days: int | None = None) -> int:
    """Message stage counts per channel into minute, hour and day rows, as absolute values
    (so running it twice changes nothing).

    Each flush recounts only the minutes since the previous pass (minus MESSAGES_OVERLAP),
    one index range per stage, and sums the hours and days those minutes belong to from the
    minute and hour rows. Once an hour (and when Redis lost the state) it recounts from the
    start of yesterday. `days` is the backfill of rollups_rebuild: hours counted from the
    messages that far back, minutes as far as they are kept. Returns the rows counted."""
    now = now or timezone.now()
    client = redis_client()
    until = _at(floor_epoch(now.timestamp(), "m") + STEP["m"])
    hour = floor_epoch(now.timestamp(), "h")
    through = client.get(redis_name(MESSAGES_THROUGH_KEY))
    rebuilt = client.get(redis_name(MESSAGES_REBUILT_KEY))
    recount = days is not None or through is None or rebuilt is None or int(rebuilt) < hour
    if through is None or recount:
        minutes_since = _day_start(now - MESSAGES_LATE)
    else:
        minutes_since = min(_at(int(through)), until) - MESSAGES_OVERLAP
    hours_since: datetime | None = None
    if days is not None:
        hours_since = _day_start(now) - timedelta(days=days - 1)
        minutes_since = max(hours_since, minutes_since)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_MESSAGES_DELETE, [RollupGrain.MINUTE.value, minutes_since, until])
        minute_rows = _messages_count(cursor, unit="minute", since=minutes_since, until=until)
        _upsert(_UPSERT_SET, minute_rows)
        hours_from = _at(floor_epoch(minutes_since.timestamp(), "h"))
        _messages_derive(
            cursor, grain=RollupGrain.HOUR, source=RollupGrain.MINUTE, since=hours_from,
            until=until,
        )  # fmt: skip
        if hours_since is not None and hours_since < hours_from:
            cursor.execute(_MESSAGES_DELETE, [RollupGrain.HOUR.value, hours_since, hours_from])
            _upsert(
                _UPSERT_SET,
                _messages_count(cursor, unit="hour", since=hours_since, until=hours_from),
            )
            hours_from = hours_since
        _messages_derive(
            cursor, grain=RollupGrain.DAY, source=RollupGrain.HOUR,
            since=_day_start(hours_from), until=until,
        )  # fmt: skip

    def advance() -> None:
        pipe = client.pipeline(transaction=True)
        pipe.set(redis_name(MESSAGES_THROUGH_KEY), int(until.timestamp()))
        if recount:
            pipe.set(redis_name(MESSAGES_REBUILT_KEY), hour)
        pipe.execute()

    transaction.on_commit(advance)
    return len(minute_rows)


def _prune(now: datetime) -> None:
    with connection.cursor() as cursor:
        for grain, keep in RETENTION.items():
            cursor.execute(
                "DELETE FROM marketing_metricrollup WHERE grain = %s AND bucket < %s",
                [grain.value, now - keep],
            )
    RollupFlush.objects.filter(flushed_at__lt=now - timedelta(days=1)).delete()


# --- backfill ----------------------------------------------------------------------------------

_REBUILD = """
INSERT INTO marketing_metricrollup (grain, bucket, metric, key, value)
SELECT %(grain)s, date_trunc(%(unit)s, occurred_at), 'events', type, count(*)
FROM profiles_event WHERE occurred_at >= %(since)s AND id <= %(top)s GROUP BY 2, 4
UNION ALL
SELECT %(grain)s, date_trunc(%(unit)s, occurred_at), 'conversions', '', count(*)
FROM profiles_event WHERE type = ANY(%(goals)s) AND occurred_at >= %(since)s AND id <= %(top)s
GROUP BY 2
UNION ALL
SELECT %(grain)s, date_trunc(%(unit)s, occurred_at), 'revenue', '', sum(value)
FROM profiles_event WHERE type = ANY(%(goals)s) AND occurred_at >= %(since)s AND id <= %(top)s
    AND value IS NOT NULL
GROUP BY 2
UNION ALL
SELECT %(grain)s, date_trunc(%(unit)s, occurred_at), 'active', '', count(DISTINCT customer_id)
FROM profiles_event WHERE occurred_at >= %(since)s AND id <= %(top)s GROUP BY 2
UNION ALL
SELECT %(grain)s, date_trunc(%(unit)s, occurred_at), 'rec_clicks', '', count(*)
FROM profiles_event
WHERE type = ANY(%(rec_types)s) AND occurred_at >= %(since)s AND id <= %(top)s
  AND (properties ?| %(rec_ids)s OR properties->>'source' = ANY(%(rec_sources)s)
       OR starts_with(properties->>'source', %(rec_prefix)s))
GROUP BY 2
"""

_REBUILD_ITEMS = """
INSERT INTO marketing_metricrollup (grain, bucket, metric, key, value)
SELECT %(grain)s, date_trunc(%(unit)s, occurred_at),
    CASE WHEN type IN ('view', 'click') THEN 'item_view'
         WHEN type = 'purchase' THEN 'item_purchase' ELSE type END,
    item_external_id, count(*)
FROM profiles_event
WHERE type IN ('view', 'click', 'purchase', 'offer_shown', 'offer_click')
  AND item_external_id <> '' AND occurred_at >= %(since)s AND id <= %(top)s
GROUP BY 2, 3, 4
"""


def rollups_rebuild(*, days: int = 35, now: datetime | None = None) -> int:
    """Recompute the event rollups of the last `days` days from the raw events (set-based
    SQL), and restart the live counters after the newest event. For a backfill after a
    history import or a lost Redis; run it while ingestion is quiet, as events stored during
    the rebuild are counted by neither side."""
    now = now or timezone.now()
    client = redis_client()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ROLLUPS_LOCK])
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FLUSH_LOCK])
        top = Event.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        inserted = 0
        for grain, unit, span in (
            (RollupGrain.MINUTE, "minute", RETENTION[RollupGrain.MINUTE]),
            (RollupGrain.HOUR, "hour", timedelta(days=days)),
            (RollupGrain.DAY, "day", timedelta(days=days)),
        ):
            since = now - min(span, timedelta(days=days))
            if grain != RollupGrain.DAY:
                since = since.replace(minute=0, second=0, microsecond=0)
            else:
                since = since.replace(hour=0, minute=0, second=0, microsecond=0)
            cursor.execute(
                """DELETE FROM marketing_metricrollup
                   WHERE grain = %s AND metric <> ALL(%s) AND bucket >= %s""",
                [grain.value, ["messages", *SERVED_METRICS], since],
            )
            params: dict[str, Any] = {
                "grain": grain.value, "unit": unit, "since": since, "top": top,
                "goals": list(GOAL_TYPES), "rec_types": list(REC_CLICK_TYPES),
                "rec_ids": list(REC_ID_PROPERTIES), "rec_sources": list(REC_SOURCES),
                "rec_prefix": REC_SOURCE_PREFIX,
            }  # fmt: skip
            cursor.execute(_REBUILD, params)
            inserted += cursor.rowcount
            if grain != RollupGrain.MINUTE:
                cursor.execute(_REBUILD_ITEMS, params)
                inserted += cursor.rowcount
        stale = list(client.smembers(redis_name(DIRTY_KEY)))
        pipe = client.pipeline(transaction=True)
        for minute in stale:
            pipe.delete(live_key(int(minute)))
        pipe.delete(redis_name(DIRTY_KEY))
        pipe.set(redis_name(WATERMARK_KEY), top)
        pipe.execute()
    messages_rollup(now=now, days=days)
    _hyperloglogs_rebuild(client, now=now, top=top)
    return inserted


_HLL_REBUILD = """
SELECT DISTINCT extract(epoch FROM date_trunc(%(unit)s, occurred_at))::bigint, customer_id
FROM profiles_event WHERE occurred_at >= %(since)s AND id <= %(top)s
"""
HLL_REBUILD_CHUNK = 50_000


def _hyperloglogs_rebuild(client: redis.Redis, *, now: datetime, top: int) -> None:
    """Refill the active-customer HyperLogLogs of the buckets Redis still keeps (PFADD of an
    id already there changes nothing, so live additions meanwhile are harmless)."""
    for grain, unit in (("m", "minute"), ("h", "hour"), ("d", "day")):
        params: dict[str, Any] = {
            "unit": unit,
            "since": now - timedelta(seconds=HLL_TTL[grain]),
            "top": top,
        }
        with connection.chunked_cursor() as cursor:
            cursor.execute(_HLL_REBUILD, params)
            while chunk := cursor.fetchmany(HLL_REBUILD_CHUNK):
                by_bucket: dict[int, list[int]] = defaultdict(list)
                for bucket, customer_id in chunk:
                    by_bucket[int(bucket)].append(customer_id)
                pipe = client.pipeline(transaction=False)
                for bucket, ids in by_bucket.items():
                    pipe.pfadd(hll_key(grain, bucket), *ids)
                    pipe.expire(hll_key(grain, bucket), HLL_TTL[grain])
                pipe.execute()

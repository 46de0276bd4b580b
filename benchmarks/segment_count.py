"""Benchmark: count a three-condition behavioural rule segment over 1,000,000 customers and
20,000,000 events, with the product's compiler next to the same predicate written by hand.

    .venv/bin/python benchmarks/segment_count.py [--customers 1000000 --events 20000000]
        [--runs 5] [--reload]

The scratch database (marketing_bench_segments) is generated with numpy and loaded with COPY
(binary COPY into a stage table, then one INSERT ... SELECT with the event table's secondary
indexes and foreign keys dropped and rebuilt after), then VACUUM ANALYZE. It is kept between
runs while its row counts match; `--reload` loads it again. Reports the count by the ORM and
by hand-written SQL (first run and median of the warm ones), the materialization of the
segment, and the real-time evaluation of one customer against ten rule segments (p50 / p99).
EXPLAIN (ANALYZE, BUFFERS) plans go to stderr; JSON on the last line.
"""

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime

import numpy as np
import psycopg
from _scratch import PG, bench_env, database_reset, django_setup, migrate

DB = "marketing_bench_segments"
_ENV = bench_env(DB, redis_db=8)
TARGET_SECONDS = 3.0

CATEGORIES = [
    "Shoes", "Dresses", "Shirts", "Jeans", "Jackets", "Bags", "Watches", "Jewellery",
    "Beauty", "Fragrance", "Sports", "Outdoor", "Kitchen", "Home", "Garden", "Toys",
    "Books", "Electronics", "Phones", "Gaming",
]  # fmt: skip
COUNTRIES = ["US", "GB", "DE", "FR", "IT", "ES", "NL", "PL", "AT", "CH", "SE", "BE", "CA", "AU"]
COUNTRY_WEIGHTS = [24, 12, 12, 10, 7, 7, 5, 5, 3, 3, 3, 3, 3, 3]
# Drawn shares; email events of customers without an email become views, so opens end up
# about 8% and purchases about 3% of all events.
EVENT_TYPES = [
    "view", "click", "add_to_cart", "purchase", "offer_shown", "offer_click", "email_open",
    "email_click", "sms_click", "push_open", "unsubscribe", "custom",
]  # fmt: skip
TYPE_WEIGHTS = [52.0, 11.0, 6.0, 3.0, 6.0, 1.0, 13.0, 3.0, 0.8, 2.0, 0.1, 2.1]
ITEM_TYPES = ["view", "click", "add_to_cart", "purchase", "offer_shown", "offer_click"]
CHANNELS = ["", "web", "app", "email", "sms", "push"]


def _did(event_type: str, days: int, op: str, value: float, **more) -> dict:
    return {"kind": "event", "event_type": event_type, "within_days": days, "op": op,
            "value": value, **more}  # fmt: skip


def _all(*conditions: dict, op: str = "and") -> dict:
    return {"op": op, "conditions": list(conditions)}


SEGMENT = _all(
    _did("purchase", 30, "gte", 2, category="Shoes"),
    _did("email_open", 60, "eq", 0),
    {"kind": "profile", "field": "country", "op": "in", "value": ["DE", "AT", "CH"]},
)

# A broad variant, timed once: no window, so every buyer (about 125,000) is probed for opens.
BROAD_SEGMENT = _all(_did("purchase", 3650, "gte", 2), _did("email_open", 3650, "eq", 0))

# The same predicate, written by hand as well as we can.
HAND_SQL = """
SELECT count(*) FROM (
    SELECT e.customer_id
    FROM profiles_event e
    JOIN recommender_item i ON i.external_id = e.item_external_id AND i.category = %(category)s
    WHERE e.type = 'purchase' AND e.occurred_at >= %(since_purchase)s
    GROUP BY e.customer_id
    HAVING count(*) >= 2
) AS buyers
JOIN profiles_customer c ON c.id = buyers.customer_id
WHERE c.erased_at IS NULL AND c.country IN ('DE', 'AT', 'CH')
  AND NOT EXISTS (
    SELECT 1 FROM profiles_event o
    WHERE o.customer_id = c.id AND o.type = 'email_open' AND o.occurred_at >= %(since_open)s)
"""


# Ten segments of different shapes for the real-time evaluation of one customer.
REALTIME_SEGMENTS = {
    "shoe buyers not opening": SEGMENT,
    "recent viewers": _all(_did("view", 7, "gte", 3)),
    "cart abandoners": _all(_did("add_to_cart", 14, "gte", 1), _did("purchase", 14, "eq", 0)),
    "big spenders": _all({"kind": "feature", "field": "revenue", "op": "gte", "value": 200}),
    "lapsed": _all(
        {"kind": "feature", "field": "last_seen", "op": "not_in_last_days", "value": 30}
    ),
    "email reachable openers": _all(
        {"kind": "reachable", "channel": "email", "op": "is"}, _did("email_open", 30, "gte", 1)
    ),
    "electronics fans in the US": _all(
        {"kind": "profile", "field": "country", "op": "eq", "value": "US"},
        _did("view", 30, "gte", 2, category="Electronics"),
    ),
    "frequent buyers": _all(
        {"kind": "feature", "field": "orders", "op": "gte", "value": 3},
        _did("purchase", 30, "gte", 150, aggregate="sum"),
        op="or",
    ),
    "no personalization consent": _all(
        {"kind": "consent", "purpose": "personalization", "op": "not_granted"}
    ),
    "offer clickers": _all(
        _did("offer_click", 60, "gte", 1),
        {"kind": "feature", "field": "orders", "op": "lt", "value": 2},
    ),
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- loading --------------------------------------------------------------------------------


def loaded_counts() -> tuple[int, int] | None:
    try:
        with psycopg.connect(f"{PG}/{DB}") as conn:
            row = conn.execute("SELECT customers, events, load_seconds FROM bench_meta").fetchone()
    except psycopg.Error:
        return None
    return row


def _binary_copy(cursor, table: str, columns: list[tuple[str, np.ndarray, str]]) -> None:
    """COPY fixed-width, never-null columns in PostgreSQL's binary format, built by numpy."""
    n = len(columns[0][1])
    fields = [("nfields", ">i2")]
    for name, _, dtype in columns:
        fields += [(f"{name}_len", ">i4"), (name, dtype)]
    names = ", ".join(name for name, _, _ in columns)
    header = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
    step = 1_000_000
    with cursor.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT binary)") as copy:
        copy.write(header)
        for start in range(0, n, step):
            stop = min(n, start + step)
            rows = np.empty(stop - start, dtype=fields)
            rows["nfields"] = len(columns)
            for name, values, dtype in columns:
                rows[f"{name}_len"] = np.dtype(dtype).itemsize
                rows[name] = values[start:stop]
            copy.write(rows.tobytes())
        copy.write((-1).to_bytes(2, "big", signed=True))


def store_generate(args) -> dict:
    """The store as numpy arrays: customers, items and time-ordered events."""
    rng = np.random.default_rng(args.seed)
    n_c, n_e, n_i = args.customers, args.events, args.items
    now_us = int(datetime.now(tz=UTC).timestamp() * 1e6)
    day_us = 86_400 * 10**6

    country = rng.choice(
        len(COUNTRIES), size=n_c, p=np.array(COUNTRY_WEIGHTS) / sum(COUNTRY_WEIGHTS)
    )
    has_email = rng.random(n_c) < 0.6
    has_phone = rng.random(n_c) < 0.25
    signup_us = now_us - (rng.random(n_c) * 730 * day_us).astype(np.int64)
    category_pop = 1.0 / np.arange(1, len(CATEGORIES) + 1) ** 0.6
    category_pop /= category_pop.sum()
    favourite = rng.choice(len(CATEGORIES), size=n_c, p=category_pop)
    activity = rng.lognormal(0.0, 1.2, size=n_c)

    item_category = np.sort(rng.choice(len(CATEGORIES), size=n_i, p=category_pop))
    item_price = np.round(rng.lognormal(3.5, 0.7, size=n_i), 2)
    cat_start = np.searchsorted(item_category, np.arange(len(CATEGORIES)))
    cat_size = np.bincount(item_category, minlength=len(CATEGORIES))
    item_pop = 1.0 / np.arange(1, n_i + 1) ** 0.8
    item_pop = item_pop[rng.permutation(n_i)]
    item_pop /= item_pop.sum()

    customer = rng.choice(n_c, size=n_e, p=activity / activity.sum()).astype(np.int64)
    etype = rng.choice(len(EVENT_TYPES), size=n_e, p=np.array(TYPE_WEIGHTS) / sum(TYPE_WEIGHTS))
    email_types = np.isin(
        etype, [EVENT_TYPES.index("email_open"), EVENT_TYPES.index("email_click")]
    )
    etype[email_types & ~has_email[customer]] = EVENT_TYPES.index("view")
    etype = etype.astype(np.int16)

    with_item = np.isin(etype, [EVENT_TYPES.index(t) for t in ITEM_TYPES])
    from_taste = rng.random(n_e) < 0.6
    fav = favourite[customer]
    taste_item = cat_start[fav] + (rng.random(n_e) * cat_size[fav]).astype(np.int64)
    global_item = rng.choice(n_i, size=n_e, p=item_pop)
    item = np.where(from_taste, taste_item, global_item)
    item = np.where(with_item, item, -1).astype(np.int16)

    purchase = etype == EVENT_TYPES.index("purchase")
    value_cents = np.where(purchase, np.round(item_price[np.maximum(item, 0)] * 100), -1).astype(
        np.int32
    )
    channel = np.where(rng.random(n_e) < 0.7, 1, 2).astype(np.int16)  # web / app
    for kind, ch in (
        ("email_open", 3),
        ("email_click", 3),
        ("sms_click", 4),
        ("push_open", 5),
        ("custom", 0),
    ):
        channel[etype == EVENT_TYPES.index(kind)] = ch
    campaign = np.where(np.isin(channel, [3, 4, 5]), rng.integers(1, 60, size=n_e), 0).astype(
        np.int32
    )
    occurred_us = now_us - (rng.random(n_e) * args.days * day_us).astype(np.int64)
    order = np.argsort(occurred_us, kind="stable")  # an append-only table is in time order
    return {
        "country": country, "has_email": has_email, "has_phone": has_phone, "signup_us": signup_us,
        "item_category": item_category, "item_price": item_price,
        "customer": customer[order], "type": etype[order], "item": item[order],
        "value_cents": value_cents[order], "channel": channel[order], "campaign": campaign[order],
        "occurred_us": occurred_us[order],
    }  # fmt: skip


EPOCH_2000_US = 946_684_800 * 10**6

EVENTS_INSERT = """
INSERT INTO profiles_event (event_id, customer_id, type, item_external_id, value, channel,
                            campaign_id, occurred_at, received_at, properties)
SELECT gen_random_uuid(), s.customer_id, (%(types)s::text[])[s.type + 1],
       CASE WHEN s.item >= 0 THEN 'item-' || lpad(s.item::text, 5, '0') ELSE '' END,
       CASE WHEN s.value_cents >= 0 THEN s.value_cents / 100.0 END,
       (%(channels)s::text[])[s.channel + 1], NULLIF(s.campaign, 0),
       s.occurred_at, s.occurred_at, '{}'::jsonb
FROM bench_event_stage s ORDER BY s.seq
"""

FEATURES_INSERT = """
INSERT INTO profiles_customerfeatures (customer_id, state, events_applied, updated_at)
SELECT customer_id,
       %(empty)s::jsonb || jsonb_strip_nulls(jsonb_build_object(
           'orders', count(*) FILTER (WHERE type = 'purchase'),
           'revenue', coalesce(sum(value) FILTER (WHERE type = 'purchase'), 0)::float8,
           'sessions', greatest(1, count(*) / 6),
           'first_seen', extract(epoch FROM min(occurred_at)),
           'last_seen', extract(epoch FROM max(occurred_at)),
           'last_at', jsonb_strip_nulls(jsonb_build_object('purchase',
               extract(epoch FROM max(occurred_at) FILTER (WHERE type = 'purchase')))))),
       count(*), now()
FROM profiles_event GROUP BY customer_id
"""

ENDPOINTS_INSERT = """
INSERT INTO profiles_channelendpoint (customer_id, channel, address, opted_out, attributes,
                                      created_at, updated_at)
SELECT id, 'email', email, abs(hashtext(external_id)) % 20 = 0, '{}'::jsonb, created_at, created_at
FROM profiles_customer WHERE email <> ''
UNION ALL
SELECT id, 'sms', phone, abs(hashtext(external_id)) % 10 = 0, '{}'::jsonb, created_at, created_at
FROM profiles_customer WHERE phone <> ''
"""

CONSENTS_INSERT = """
INSERT INTO profiles_consent (customer_id, purpose, granted, source, changed_at)
SELECT customer_id, CASE channel WHEN 'email' THEN 'marketing_email' ELSE 'sms' END,
       NOT opted_out, 'import', created_at
FROM profiles_channelendpoint
UNION ALL
SELECT id, 'personalization', abs(hashtext(external_id)) % 10 <> 0, 'import', created_at
FROM profiles_customer WHERE abs(hashtext(external_id)) % 3 <> 0
"""


def _event_table_detach(cursor) -> list[str]:
    """Drop profiles_event's secondary indexes and foreign keys for the bulk insert; returns
    the statements that rebuild them exactly (names and definitions from the catalog)."""
    cursor.execute(
        """
        SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
        WHERE conrelid = 'profiles_event'::regclass AND contype IN ('f', 'u')
        """
    )
    constraints = cursor.fetchall()
    cursor.execute(
        """
        SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index
        WHERE indrelid = 'profiles_event'::regclass AND NOT indisprimary
          AND indexrelid NOT IN (SELECT conindid FROM pg_constraint
                                 WHERE conrelid = 'profiles_event'::regclass)
        """
    )
    indexes = cursor.fetchall()
    rebuild = []
    for name, definition in constraints:
        cursor.execute(f'ALTER TABLE profiles_event DROP CONSTRAINT "{name}"')
        rebuild.append(f'ALTER TABLE profiles_event ADD CONSTRAINT "{name}" {definition}')
    for name, definition in indexes:
        cursor.execute(f"DROP INDEX {name}")
        rebuild.append(definition)
    return rebuild


def store_load(args) -> float:
    """Reset the scratch database and load the store; returns the seconds it took."""
    from django.db import connection, transaction

    from profiles.bulk import Coded, customers_copy
    from profiles.features import features_empty
    from recommender.bulk import items_copy

    started = time.perf_counter()
    database_reset(DB, _ENV)
    t = time.perf_counter()
    data = store_generate(args)
    log(f"  generated in {time.perf_counter() - t:.1f}s")
    n_c = args.customers
    with transaction.atomic():
        connection.ensure_connection()
        cursor = psycopg.Cursor(connection.connection)
        cursor.execute("SET LOCAL synchronous_commit = off")
        cursor.execute("SET LOCAL maintenance_work_mem = '1GB'")
        cursor.execute("SET LOCAL work_mem = '512MB'")
        items_copy(
            external_ids=[f"item-{i:05d}" for i in range(args.items)],
            titles=[f"Item {i}" for i in range(args.items)],
            created_at_us=np.full(args.items, data["signup_us"].min()),
            categories=Coded(data["item_category"], CATEGORIES),
            prices=data["item_price"],
        )
        ext = [f"c{i:07d}" for i in range(n_c)]
        emails = np.where(data["has_email"], np.char.add(np.array(ext), "@example.com"), "")
        phones = np.where(
            data["has_phone"],
            np.char.add("+4915", np.char.zfill(np.arange(n_c).astype(str), 9)),
            "",
        )
        customer_pks = customers_copy(
            external_ids=ext,
            created_at_us=data["signup_us"],
            emails=emails.tolist(),
            phones=phones.tolist(),
            countries=Coded(data["country"], COUNTRIES),
        )
        log(f"  customers and items in {time.perf_counter() - t:.1f}s")
        cursor.execute(
            "CREATE TEMP TABLE bench_event_stage (seq int8, customer_id int8, type int2, "
            "item int2, value_cents int4, channel int2, campaign int4, occurred_at timestamptz)"
        )
        n_e = len(data["customer"])
        _binary_copy(
            cursor,
            "bench_event_stage",
            [
                ("seq", np.arange(n_e, dtype=np.int64), ">i8"),
                ("customer_id", customer_pks[data["customer"]], ">i8"),
                ("type", data["type"], ">i2"),
                ("item", data["item"], ">i2"),
                ("value_cents", data["value_cents"], ">i4"),
                ("channel", data["channel"], ">i2"),
                ("campaign", data["campaign"], ">i4"),
                ("occurred_at", data["occurred_us"] - EPOCH_2000_US, ">i8"),
            ],
        )
        log(f"  events staged in {time.perf_counter() - t:.1f}s")
        rebuild = _event_table_detach(cursor)
        cursor.execute(EVENTS_INSERT, {"types": EVENT_TYPES, "channels": CHANNELS})
        log(f"  events inserted in {time.perf_counter() - t:.1f}s")
        for statement in rebuild:
            cursor.execute(statement)
        log(f"  event indexes rebuilt in {time.perf_counter() - t:.1f}s")
        cursor.execute(FEATURES_INSERT, {"empty": json.dumps(features_empty())})
        cursor.execute(ENDPOINTS_INSERT)
        cursor.execute(CONSENTS_INSERT)
        log(f"  features, endpoints, consents in {time.perf_counter() - t:.1f}s")
        cursor.execute("DROP TABLE bench_event_stage")
    connection.close()
    with psycopg.connect(f"{PG}/{DB}", autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        seconds = time.perf_counter() - started
        conn.execute(
            "CREATE TABLE bench_meta (customers int8, events int8, load_seconds float8, "
            "loaded_at timestamptz DEFAULT now())"
        )
        conn.execute(
            "INSERT INTO bench_meta (customers, events, load_seconds) VALUES (%s, %s, %s)",
            [n_c, args.events, seconds],
        )
    log(f"  vacuumed and analyzed: {seconds:.1f}s")
    return seconds


# --- measuring ------------------------------------------------------------------------------


def _explain(sql: str, params=None) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def _timed(fn, runs: int) -> tuple[list[float], object]:
    seconds, result = [], None
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - t)
    return seconds, result


def _summary(seconds: list[float]) -> dict:
    warm = seconds[1:] or seconds
    return {
        "first_s": round(seconds[0], 3),
        "warm_median_s": round(statistics.median(warm), 3),
        "runs_s": [round(s, 3) for s in seconds],
    }


def measure(args) -> dict:
    from datetime import timedelta

    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from profiles.models import Customer, Segment
    from profiles.segments.compiler import segment_rules_q, segment_rules_queryset
    from profiles.segments.selectors import (
        segment_preview,
        segment_rules_clean,
        segments_for_customer,
    )
    from profiles.segments.services import segment_create, segment_refresh

    now = timezone.now()
    rules = segment_rules_clean(SEGMENT)
    category = SEGMENT["conditions"][0]["category"]
    hand_params = {
        "category": category,
        "since_purchase": now - timedelta(days=30),
        "since_open": now - timedelta(days=60),
    }

    def orm_count() -> int:
        """What the builder and the API run: validation, compilation, count and sample."""
        return segment_preview(rules=SEGMENT, now=now).count

    def hand_count() -> int:
        with connection.cursor() as cursor:
            cursor.execute(HAND_SQL, hand_params)
            return cursor.fetchone()[0]

    # Alternate the two so neither always runs on a cache the other warmed.
    orm_s, hand_s = [], []
    orm_n = hand_n = -1
    for _ in range(args.runs):
        s, orm_n = _timed(orm_count, 1)
        orm_s += s
        s, hand_n = _timed(hand_count, 1)
        hand_s += s
    log(f"ORM {orm_n} in {orm_s}; hand SQL {hand_n} in {hand_s}")

    with CaptureQueriesContext(connection) as captured:
        segment_rules_queryset(rules, now=now).count()
    orm_sql = captured.captured_queries[-1]["sql"]
    log("--- ORM count SQL\n" + orm_sql)
    log("--- EXPLAIN ORM count\n" + _explain(orm_sql))
    log("--- EXPLAIN hand SQL\n" + _explain(HAND_SQL, hand_params))

    t = time.perf_counter()
    broad_n = segment_preview(rules=BROAD_SEGMENT, now=now).count
    broad_s = time.perf_counter() - t
    log(f"broad segment: {broad_n} in {broad_s:.2f}s")

    Segment.objects.filter(name__startswith="bench: ").delete()
    segments = [
        segment_create(name=f"bench: {name}", rules=r, refresh=False)
        for name, r in REALTIME_SEGMENTS.items()
    ]
    t = time.perf_counter()
    change = segment_refresh(segment=segments[0])
    materialize_s = time.perf_counter() - t
    log(f"materialized {change.size} members in {materialize_s:.2f}s")

    rng = np.random.default_rng(args.seed + 1)
    low, high = (
        Customer.objects.order_by("pk").values_list("pk", flat=True)[:1][0],
        Customer.objects.order_by("-pk").values_list("pk", flat=True)[:1][0],
    )
    sample = list(
        Customer.objects.filter(pk__in=rng.integers(low, high + 1, size=args.realtime).tolist())
    )
    segments_for_customer(customer=sample[0])  # connection and plan caches
    realtime_ms, memberships = [], 0
    for customer in sample:
        t = time.perf_counter()
        flags = segments_for_customer(customer=customer)
        realtime_ms.append((time.perf_counter() - t) * 1000)
        memberships += sum(1 for _, member in flags if member)
    one = sample[0].pk
    plan = (
        Customer.objects.filter(pk=one)
        .filter(segment_rules_q(rules, now=now, correlated=True))
        .explain()
    )
    log("--- EXPLAIN one customer (correlated)\n" + plan)
    with CaptureQueriesContext(connection) as captured:
        segments_for_customer(customer=sample[0])
    realtime_plan = _explain(captured.captured_queries[-1]["sql"])
    log("--- EXPLAIN segments_for_customer (10 segments)\n" + realtime_plan)

    orm, hand = _summary(orm_s), _summary(hand_s)
    return {
        "count": orm_n,
        "hand_count": hand_n,
        "counts_equal": orm_n == hand_n,
        "orm": orm,
        "hand_sql": hand,
        "orm_vs_hand_warm": round(orm["warm_median_s"] / max(hand["warm_median_s"], 1e-6), 2),
        "broad_count": broad_n,
        "broad_orm_s": round(broad_s, 2),
        "materialize_s": round(materialize_s, 2),
        "materialized_members": change.size,
        "realtime_segments": len(segments),
        "realtime_customers": len(sample),
        "realtime_p50_ms": round(float(np.percentile(realtime_ms, 50)), 2),
        "realtime_p99_ms": round(float(np.percentile(realtime_ms, 99)), 2),
        "realtime_memberships_per_customer": round(memberships / len(sample), 2),
        "correlated_uses_customer_time_index": "event_customer_time" in plan,
        "ok": orm_n == hand_n and max(orm["first_s"], orm["warm_median_s"]) < TARGET_SECONDS,
    }


WRITE_SQL = """
INSERT INTO profiles_event (event_id, customer_id, type, item_external_id, value, channel,
                            campaign_id, occurred_at, received_at, properties)
SELECT gen_random_uuid(), customer_id, type, item_external_id, value, channel, campaign_id,
       occurred_at + interval '90 days', received_at + interval '90 days', properties
FROM profiles_event WHERE id > (SELECT max(id) FROM profiles_event) - %s ORDER BY id
"""


def index_write_cost(rows: int, rounds: int = 3) -> dict:
    """What the (type, occurred_at) index costs the write path: the same `rows` new events
    appended to the 20M-row table with and without it (dropped in the transaction), each
    rolled back, alternating; then VACUUM removes the dead rows."""
    timings: dict[str, list[float]] = {"with": [], "without": []}
    with psycopg.connect(f"{PG}/{DB}") as conn:
        if not conn.execute("SELECT 1 FROM pg_class WHERE relname = 'event_type_time'").fetchone():
            return {}
        for _ in range(rounds):
            for variant in ("with", "without"):
                if variant == "without":
                    conn.execute("DROP INDEX event_type_time")
                t = time.perf_counter()
                conn.execute(WRITE_SQL, [rows])
                timings[variant].append(time.perf_counter() - t)
                conn.rollback()
        conn.autocommit = True
        conn.execute("VACUUM profiles_event")
    with_s, without_s = (statistics.median(timings[v]) for v in ("with", "without"))
    log(f"appending {rows:,} events: {with_s:.2f}s with the index, {without_s:.2f}s without")
    return {
        "append_rows": rows,
        "append_with_type_index_s": round(with_s, 2),
        "append_without_type_index_s": round(without_s, 2),
        "append_index_overhead": round(with_s / without_s - 1, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--realtime", type=int, default=200, help="customers evaluated one by one")
    parser.add_argument("--reload", action="store_true", help="generate and load the store again")
    parser.add_argument(
        "--append", type=int, default=200_000, help="events appended to price the index (0: skip)"
    )
    args = parser.parse_args()

    django_setup(_ENV)
    loaded = loaded_counts()
    reloaded = args.reload or loaded is None or tuple(loaded[:2]) != (args.customers, args.events)
    if reloaded:
        log(f"loading {args.customers:,} customers and {args.events:,} events ...")
        load_seconds = store_load(args)
    else:
        log("reusing the loaded scratch database; migrating it")
        t = time.perf_counter()
        migrate(_ENV)
        log(f"  migrated in {time.perf_counter() - t:.1f}s")
        load_seconds = loaded[2]
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_size_pretty(pg_total_relation_size('profiles_event'))")
        event_size = cursor.fetchone()[0]
    result = {
        "benchmark": "segment_count",
        "customers": args.customers,
        "events": args.events,
        "load_seconds": round(load_seconds, 1),
        "loaded_now": reloaded,
        "event_table_size": event_size,
        "target_seconds": TARGET_SECONDS,
        **measure(args),
        **(index_write_cost(args.append) if args.append else {}),
        "cpus": __import__("os").cpu_count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

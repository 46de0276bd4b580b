"""Benchmark: the live dashboard (home page) with 20,000,000 events stored, next to one raw
count over the events table.

    .venv/bin/python benchmarks/dashboard_latency.py [--customers 1000000 --events 20000000]
        [--requests 30] [--reload]

The scratch database (marketing_bench_dashboard) is filled by set-based SQL: customers and
events from generate_series with random types, items, channels and values over the last 40
days (denser in the last day, so the hour window is not empty), the event table's secondary
indexes and foreign key dropped during the load and rebuilt after, then VACUUM ANALYZE. The
rollups are built from the raw events once by `rollups_rebuild` (the backfill service; live
traffic reaches them through the Redis counters instead). The database is kept between runs
while its counts match; `--reload` loads it again.

Measures the page through the Django test client (login, middleware, templates, the same
code gunicorn runs; DEBUG off) for each window, `requests` times each after one warm-up, and
`SELECT count(*) FROM profiles_event WHERE occurred_at > now() - '30 days'` (cold-ish first
and median of three). JSON on the last line.
"""

import argparse
import json
import statistics
import sys
import time

import psycopg
from _scratch import PG, bench_env, database_reset, django_setup, migrate

DB = "marketing_bench_dashboard"
_ENV = bench_env(DB, redis_db=12)
TARGET_MS = 300.0
WINDOWS = ("hour", "day", "30d")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def loaded_counts() -> tuple | None:
    try:
        with psycopg.connect(f"{PG}/{DB}") as conn:
            return conn.execute(
                "SELECT customers, events, load_seconds, rollup_seconds FROM bench_meta"
            ).fetchone()
    except psycopg.Error:
        return None


_CUSTOMERS = """
INSERT INTO profiles_customer (external_id, is_anonymous, email, phone, first_name, last_name,
    country, timezone, language, gender, attributes, created_at, updated_at)
SELECT 'c' || g, false, 'c' || g || '@example.com', '', '', '', 'US', '', '', '', '{}'::jsonb,
    now() - interval '400 days', now() - interval '400 days'
FROM generate_series(1, %(n)s) AS g
"""

# Types drawn with the simulated store's shares (views dominate, purchases about 3%); the
# age is skewed towards now (power 3) so the last hour holds tens of thousands of events.
_EVENTS = """
INSERT INTO profiles_event (event_id, customer_id, type, item_external_id, value, channel,
    campaign_id, occurred_at, received_at, properties)
SELECT gen_random_uuid(), c0 + (random() * (%(customers)s - 1))::bigint, t.type,
    CASE WHEN t.type IN ('view', 'click', 'add_to_cart', 'purchase')
         THEN 'i' || (1 + floor(1000 * random() ^ 3))::int
         WHEN t.type IN ('offer_shown', 'offer_click') THEN 'offer-' || (1 + (g %% 20))
         ELSE '' END,
    CASE WHEN t.type = 'purchase' THEN round((5 + 200 * random())::numeric, 2) END,
    CASE WHEN t.type LIKE 'email%%' THEN 'email' WHEN t.type = 'sms_click' THEN 'sms'
         WHEN t.type = 'push_open' THEN 'push' WHEN g %% 3 = 0 THEN 'app' ELSE 'web' END,
    CASE WHEN t.type IN ('email_open', 'email_click', 'sms_click', 'push_open')
         THEN 1 + (g %% 10) END,
    ts, ts, '{}'::jsonb
FROM generate_series(1, %(events)s) AS g,
     LATERAL (SELECT now() - (40 * 86400 * random() ^ 3) * interval '1 second' AS ts,
                     random() AS r, g AS gg) AS d,
     LATERAL (SELECT CASE
        WHEN d.r < 0.52 THEN 'view' WHEN d.r < 0.63 THEN 'click'
        WHEN d.r < 0.69 THEN 'add_to_cart' WHEN d.r < 0.72 THEN 'purchase'
        WHEN d.r < 0.78 THEN 'offer_shown' WHEN d.r < 0.79 THEN 'offer_click'
        WHEN d.r < 0.92 THEN 'email_open' WHEN d.r < 0.95 THEN 'email_click'
        WHEN d.r < 0.958 THEN 'sms_click' WHEN d.r < 0.978 THEN 'push_open'
        ELSE 'custom' END AS type, d.gg AS g2) AS t,
     (SELECT min(id) AS c0 FROM profiles_customer) AS first
"""


def _event_table_detach(cursor) -> list[str]:
    """Drop the event table's secondary indexes and foreign key; return their definitions."""
    cursor.execute(
        """SELECT indexdef FROM pg_indexes WHERE tablename = 'profiles_event'
           AND indexname NOT LIKE '%%_pkey'"""
    )
    definitions = [row[0] for row in cursor.fetchall()]
    cursor.execute(
        """SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
           WHERE conrelid = 'profiles_event'::regclass AND contype IN ('f', 'u')"""
    )
    constraints = cursor.fetchall()
    for name, _ in constraints:
        cursor.execute(f'ALTER TABLE profiles_event DROP CONSTRAINT "{name}"')
    cursor.execute(
        """SELECT indexname FROM pg_indexes WHERE tablename = 'profiles_event'
           AND indexname NOT LIKE '%%_pkey'"""
    )
    for (name,) in cursor.fetchall():
        cursor.execute(f'DROP INDEX "{name}"')
    return [
        *(f'ALTER TABLE profiles_event ADD CONSTRAINT "{n}" {d}' for n, d in constraints),
        *(d for d in definitions if "UNIQUE" not in d),
    ]


def store_load(args) -> float:
    started = time.perf_counter()
    database_reset(DB, _ENV)
    with psycopg.connect(f"{PG}/{DB}", autocommit=True) as conn, conn.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '1GB'")
        cursor.execute("SET max_parallel_maintenance_workers = 2")
        cursor.execute(_CUSTOMERS, {"n": args.customers})
        log(f"customers {args.customers:,} in {time.perf_counter() - started:.0f} s")
        restore = _event_table_detach(cursor)
        cursor.execute(_EVENTS, {"events": args.events, "customers": args.customers})
        log(f"events {args.events:,} in {time.perf_counter() - started:.0f} s")
        for statement in restore:
            cursor.execute(statement)
            log(f"  {statement[:90]}... {time.perf_counter() - started:.0f} s")
        cursor.execute("VACUUM ANALYZE profiles_event")
        cursor.execute("VACUUM ANALYZE profiles_customer")
        seconds = time.perf_counter() - started
        cursor.execute(
            """CREATE TABLE bench_meta (customers bigint, events bigint, load_seconds float,
               rollup_seconds float)"""
        )
        cursor.execute(
            "INSERT INTO bench_meta VALUES (%s, %s, %s, NULL)",
            [args.customers, args.events, seconds],
        )
    log(f"loaded in {seconds:.0f} s")
    return seconds


def _summary(seconds: list[float]) -> dict:
    ms = sorted(1000 * s for s in seconds)
    return {
        "p50_ms": round(statistics.median(ms), 1),
        "p95_ms": round(ms[min(len(ms) - 1, int(0.95 * len(ms)))], 1),
        "max_ms": round(ms[-1], 1),
    }


def _hyperloglogs_fill() -> None:
    """The rebuild writes exact distinct counts into the rows but no HyperLogLogs (those
    follow the live stream); give every bucket of the windows one with 5,000 ids (dense
    encoding) so the page pays for its PFCOUNT unions as in production."""
    from marketing import rollups

    client = rollups.redis_client()
    now = int(time.time())
    pipe = client.pipeline(transaction=False)
    for grain, count in (("m", 61), ("h", 26), ("d", 32)):
        step = rollups.STEP[grain]
        for i in range(count):
            bucket = rollups.floor_epoch(now - i * step, grain)
            pipe.pfadd(rollups.hll_key(grain, bucket), *range(bucket % 997, bucket % 997 + 5000))
    pipe.execute()


def measure(args) -> dict:
    migrate(_ENV)  # a kept database gets the migrations added since it was loaded
    django_setup(_ENV)
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client

    from marketing.dashboard import dashboard_for_window
    from marketing.models import MetricRollup
    from marketing.rollups import rollups_rebuild

    cache.clear()
    loaded = loaded_counts()
    rollup_seconds = loaded[3] if loaded else None
    if rollup_seconds is None or not MetricRollup.objects.exists():
        started = time.perf_counter()
        rows = rollups_rebuild(days=35)
        rollup_seconds = time.perf_counter() - started
        log(f"rollups rebuilt: {rows:,} rows in {rollup_seconds:.0f} s")
        with connection.cursor() as cursor:
            cursor.execute("UPDATE bench_meta SET rollup_seconds = %s", [rollup_seconds])
            cursor.execute("VACUUM ANALYZE marketing_metricrollup")
    else:
        from marketing import rollups

        # A fresh Redis: the watermark after the stored events, as the rebuild leaves it.
        rollups.redis_client().set(
            rollups.redis_name(rollups.WATERMARK_KEY),
            connection.cursor().execute("SELECT max(id) FROM profiles_event").fetchone()[0],
        )
    _hyperloglogs_fill()
    user, _ = get_user_model().objects.get_or_create(
        username="bench", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)

    pages: dict[str, dict] = {}
    for window in WINDOWS:
        for kind, headers in (("page", {}), ("poll", {"HX-Request": "true"})):
            response = client.get("/", {"window": window}, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"{window} {kind}: HTTP {response.status_code}")
            seconds = []
            for _ in range(args.requests):
                started = time.perf_counter()
                response = client.get("/", {"window": window}, headers=headers)
                seconds.append(time.perf_counter() - started)
            pages[f"{window}_{kind}"] = _summary(seconds)
            log(f"{window} {kind}: {pages[f'{window}_{kind}']}")
    board = dashboard_for_window(window="30d")

    raw_sql = "SELECT count(*) FROM profiles_event WHERE occurred_at > now() - interval '30 days'"
    raw = []
    with connection.cursor() as cursor:
        for _ in range(4):
            started = time.perf_counter()
            cursor.execute(raw_sql)
            count = cursor.fetchone()[0]
            raw.append(time.perf_counter() - started)
        cursor.execute("SELECT count(*) FROM marketing_metricrollup")
        rollup_rows = cursor.fetchone()[0]
    worst_p95 = max(p["p95_ms"] for p in pages.values())
    return {
        "benchmark": "dashboard_latency",
        "events": args.events,
        "customers": args.customers,
        "rollup_rows": rollup_rows,
        "load_seconds": round(loaded[2], 1) if loaded else None,
        "rollup_rebuild_seconds": round(rollup_seconds, 1),
        "requests_per_case": args.requests,
        "dashboard": pages,
        "window_30d_events_shown": board.events_total,
        "raw_count_30d": {
            "rows": count,
            "first_ms": round(1000 * raw[0], 1),
            "median_warm_ms": round(1000 * statistics.median(raw[1:]), 1),
        },
        "target_ms": TARGET_MS,
        "worst_p95_ms": worst_p95,
        "target_met": worst_p95 < TARGET_MS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--reload", action="store_true")
    parser.add_argument("--load-only", action="store_true")
    args = parser.parse_args()
    loaded = loaded_counts()
    if args.reload or not loaded or tuple(loaded[:2]) != (args.customers, args.events):
        store_load(args)
    if args.load_only:
        return
    result = measure(args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

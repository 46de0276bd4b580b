"""Benchmark: the Attribution page's read of touchpoints and conversions from PostgreSQL
(experiments.attribution_reports.attribution_paths_load), phase by phase.

    .venv/bin/python benchmarks/attribution_report_db.py [--customers 200000 --events 4000000]
        [--db marketing_bench_attribution] [--redis-db 13] [--days 1 --lookback 1] [--reload]

The scratch database is filled like benchmarks/dashboard_latency.py's (the same generate_series
events over 40 days, skewed towards now), at a size this 2-CPU machine loads in minutes; the
README's 40 s figure was one day with a one-day lookback on the 20M-event store (6.4M rows).
Times the whole load of the paths three times and, once, each phase: the UNION into the
temporary table, the distinct channels, the sorted binary COPY, the earlier conversions; with
the EXPLAIN ANALYZE of the sort; for each session work_mem given (default 4MB, PostgreSQL's
default, against 256MB: an in-memory sort instead of an external merge), alternating runs.
`--cluster` first rewrites the events in time order (as live ingestion stores them; the
generated store's rows are in random time order, so a day's rows lie on every page).
JSON on the last line.
"""

import argparse
import json
import statistics
import sys
import time
from datetime import timedelta

import psycopg
from _scratch import PG, bench_env, database_reset, django_setup, migrate
from dashboard_latency import _CUSTOMERS, _EVENTS, _event_table_detach


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--events", type=int, default=4_000_000)
    parser.add_argument("--db", default="marketing_bench_attribution")
    parser.add_argument("--redis-db", type=int, default=13)
    parser.add_argument("--days", type=float, default=1.0)
    parser.add_argument("--lookback", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reload", action="store_true")
    parser.add_argument("--cluster", action="store_true", help="store the events in time order")
    parser.add_argument(
        "--work-mem", default="4MB,256MB", help="session work_mem values compared, alternating"
    )
    return parser.parse_args()


def loaded(db: str) -> int | None:
    try:
        with psycopg.connect(f"{PG}/{db}") as conn:
            return conn.execute("SELECT events FROM bench_meta").fetchone()[0]
    except psycopg.Error:
        return None


def store_load(args, env: dict) -> float:
    started = time.perf_counter()
    database_reset(args.db, env)
    with psycopg.connect(f"{PG}/{args.db}", autocommit=True) as conn, conn.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '512MB'")
        cursor.execute(_CUSTOMERS, {"n": args.customers})
        restore = _event_table_detach(cursor)
        cursor.execute(_EVENTS, {"events": args.events, "customers": args.customers})
        log(f"events {args.events:,} in {time.perf_counter() - started:.0f} s")
        for statement in restore:
            cursor.execute(statement)
        cursor.execute("VACUUM ANALYZE profiles_event")
        cursor.execute("CREATE TABLE bench_meta (events bigint)")
        cursor.execute("INSERT INTO bench_meta VALUES (%s)", [args.events])
    seconds = time.perf_counter() - started
    log(f"loaded in {seconds:.0f} s")
    return seconds


def _work_mem_set(value: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('work_mem', %s, false)", [value])


def phases(query) -> dict:
    """Each statement of attribution_paths_load alone, with the sort's plan."""
    from django.db import connection, transaction

    from experiments import attribution_reports as ar

    params = ar._params(query)
    out: dict = {}
    with transaction.atomic(), connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(
            "CREATE TEMP TABLE attribution_rows ON COMMIT DROP AS " + ar._ROWS_UNION, params
        )
        out["union_into_temp_s"] = round(time.perf_counter() - started, 2)
        cursor.execute("SELECT count(*) FROM attribution_rows")
        out["rows"] = cursor.fetchone()[0]
        started = time.perf_counter()
        cursor.execute("SELECT DISTINCT channel FROM attribution_rows WHERE channel <> ''")
        names = sorted(r[0] for r in cursor.fetchall())
        out["distinct_channels_s"] = round(time.perf_counter() - started, 2)
        cursor.execute("ANALYZE attribution_rows")
        cursor.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) SELECT customer_id, ts, channel, campaign, conv, value"
            " FROM attribution_rows ORDER BY customer_id, ts, conv"
        )
        plan = cursor.fetchone()[0]
        plan = json.loads(plan) if isinstance(plan, str) else plan
        sort = plan[0]["Plan"]
        out["sort"] = {
            k: sort.get(k)
            for k in ("Sort Method", "Sort Space Used", "Sort Space Type", "Actual Total Time")
        }
        started = time.perf_counter()
        size = 0
        with cursor.cursor.copy(ar._ROWS_COPY, [names]) as copy:
            for block in copy:
                size += len(block)
        out["sorted_copy_s"] = round(time.perf_counter() - started, 2)
        out["copy_mb"] = round(size / 1e6, 1)
        started = time.perf_counter()
        cursor.execute(ar._EARLIER_CONVERSIONS, params)
        cursor.fetchall()
        out["earlier_conversions_s"] = round(time.perf_counter() - started, 2)
        cursor.execute("SHOW work_mem")
        out["work_mem"] = cursor.fetchone()[0]
    return out


def main() -> None:
    args = parse_args()
    env = bench_env(args.db, redis_db=args.redis_db)
    load_seconds = None
    if args.reload or loaded(args.db) != args.events:
        load_seconds = store_load(args, env)
    else:
        migrate(env)
    if args.cluster:
        started = time.perf_counter()
        with psycopg.connect(f"{PG}/{args.db}", autocommit=True) as conn:
            conn.execute("SET maintenance_work_mem = '512MB'")
            conn.execute(
                "CREATE INDEX IF NOT EXISTS bench_event_time ON profiles_event (occurred_at)"
            )
            conn.execute("CLUSTER profiles_event USING bench_event_time")
            conn.execute("DROP INDEX bench_event_time")
            conn.execute("VACUUM ANALYZE profiles_event")
        log(f"events stored in time order in {time.perf_counter() - started:.0f} s")
    django_setup(env)
    from django.db import connection
    from django.utils import timezone

    from experiments.attribution_reports import AttributionQuery, attribution_paths_load

    now = timezone.now()
    query = AttributionQuery(
        since=now - timedelta(days=args.days), until=now, lookback_days=args.lookback
    )
    detail = {}
    for work_mem in args.work_mem.split(","):
        _work_mem_set(work_mem)
        detail[work_mem] = phases(query)
        log(json.dumps(detail[work_mem]))
    # Alternating runs (a shared machine's load moves between them).
    seconds: dict[str, list[float]] = {w: [] for w in detail}
    paths = None
    for _ in range(args.runs):
        for work_mem in detail:
            _work_mem_set(work_mem)
            started = time.perf_counter()
            paths = attribution_paths_load(query=query)
            seconds[work_mem].append(time.perf_counter() - started)
            log(f"work_mem {work_mem}: paths load {seconds[work_mem][-1]:.2f} s")
    connection.close()
    rows = next(iter(detail.values()))["rows"]
    result = {
        "benchmark": "attribution_report_db",
        "events": args.events,
        "days": args.days,
        "lookback_days": args.lookback,
        "load_seconds": load_seconds,
        "paths": paths.n_paths if paths else 0,
        "touches": paths.n_touches if paths else 0,
        "rows": rows,
        "paths_load_s": {
            w: {"median": round(statistics.median(s), 2), "all": [round(x, 2) for x in s]}
            for w, s in seconds.items()
        },
        "us_per_row": {
            w: round(1e6 * statistics.median(s) / max(rows, 1), 2) for w, s in seconds.items()
        },
        "phases": detail,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

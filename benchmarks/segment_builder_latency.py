"""Benchmark: the rule segment builder's live preview on 100,000 simulated customers.

    .venv/bin/python benchmarks/segment_builder_latency.py [--customers 100000 --days 90
        --items 2000] [--repeat 7] [--keep] [--setup-only]

Uses a scratch database (marketing_bench_segment_builder, dropped and migrated first;
`--keep` reuses the store already loaded there). Loads a simulated store (about 5.6M events
for 100,000 customers over 90 days) and computes the profile features, then posts the
builder form (`/segments/builder/`, exactly what the page's htmx sends on every change)
through the Django test client, logged in as a superuser, for six representative rules, and
times the whole request (validation, count, 10-member sample, rendering). Prints p50 and max
per rule; the target is under 1 s for each. JSON on the last line.

The behavioural rules need the (type, occurred_at) covering index on events
(profiles 0009_event_type_time_index): without it each count scans all 5.6M events (about
1.1-1.5 s for "purchase of a category at least twice in 30 days" here), with it 0.1-0.4 s.
"""

import argparse
import json
import statistics
import time
from datetime import timedelta

from _scratch import bench_env, database_reset, django_setup

DB = "marketing_bench_segment_builder"
TARGET_MS = 1000


def rules_to_bench() -> dict[str, dict]:
    purchase_2x = {
        "kind": "event",
        "event_type": "purchase",
        "category": "fashion",
        "within_days": 30,
        "op": "gte",
        "value": 2,
    }
    return {
        "profile": {
            "op": "and",
            "conditions": [{"kind": "profile", "field": "country", "op": "in", "value": ["DE"]}],
        },
        "feature": {
            "op": "and",
            "conditions": [{"kind": "feature", "field": "revenue", "op": "gte", "value": 200}],
        },
        "affinity": {
            "op": "and",
            "conditions": [
                {
                    "kind": "feature",
                    "field": "affinity",
                    "category": "books",
                    "op": "gte",
                    "value": 0.3,
                }
            ],
        },
        "purchase_2x_in_30_days": {"op": "and", "conditions": [purchase_2x]},
        "no_email_open_in_60_days": {
            "op": "and",
            "conditions": [
                {
                    "kind": "event",
                    "event_type": "email_open",
                    "within_days": 60,
                    "op": "eq",
                    "value": 0,
                }
            ],
        },
        "nested_mix": {
            "op": "and",
            "conditions": [
                {"kind": "feature", "field": "orders", "op": "gte", "value": 1},
                {
                    "op": "or",
                    "conditions": [
                        purchase_2x,
                        {"kind": "feature", "field": "last_seen", "op": "in_last_days", "value": 7},
                    ],
                },
            ],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="reuse the store already loaded")
    parser.add_argument("--setup-only", action="store_true", help="load the store and stop")
    args = parser.parse_args()

    env = bench_env(DB, redis_db=6, CELERY_BROKER_URL="memory://")
    setup: dict[str, float | int] = {}
    if not args.keep:
        database_reset(DB, env)
    django_setup(env)

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from marketing.simulation.load import store_simulate
    from marketing.simulation.store import StoreConfig
    from profiles.models import Customer, Event
    from profiles.services import features_rebuild

    if not args.keep:
        # The store's days end today, so that "in the last 30 days" finds its events.
        today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
        config = StoreConfig(
            customers=args.customers,
            items=args.items,
            days=args.days,
            seed=args.seed,
            start=today - timedelta(days=args.days - 1),
        )
        started = time.perf_counter()
        store_simulate(config=config, reset=True)
        setup["simulate_seconds"] = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        features_rebuild(repair=True)
        setup["features_seconds"] = round(time.perf_counter() - started, 1)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    setup["customers"] = Customer.objects.count()
    setup["events"] = Event.objects.count()
    if args.setup_only:
        print(json.dumps(setup))  # noqa: T201
        return

    from profiles.forms_segment_builder import rules_to_fields

    user, _ = get_user_model().objects.get_or_create(
        username="bench", defaults={"is_superuser": True, "is_staff": True}
    )
    client = Client(HTTP_HOST="127.0.0.1", HTTP_HX_REQUEST="true")
    client.force_login(user)
    results = {}
    for name, rules in rules_to_bench().items():
        data = {"name": "", "description": "", **rules_to_fields(rules)}
        client.post("/segments/builder/", data)  # warm-up: templates, connection, caches
        timings = []
        count = None
        for _ in range(args.repeat):
            started = time.perf_counter()
            response = client.post("/segments/builder/", data)
            timings.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"{name}: HTTP {response.status_code}")
            count = response.headers.get("X-Segment-Count")
        results[name] = {
            "count": int(count) if count is not None else None,
            "p50_ms": round(statistics.median(timings), 1),
            "max_ms": round(max(timings), 1),
        }
        print(  # noqa: T201
            f"{name:<26} {results[name]['count']!s:>8} members  "
            f"p50 {results[name]['p50_ms']:>7.1f} ms  max {results[name]['max_ms']:>7.1f} ms"
        )
    print(  # noqa: T201
        json.dumps(
            {
                "benchmark": "segment_builder_latency",
                **setup,
                "repeat": args.repeat,
                "rules": results,
                "target_ms": TARGET_MS,
                "ok": all(r["max_ms"] < TARGET_MS for r in results.values()),
            }
        )
    )


if __name__ == "__main__":
    main()

"""Benchmark: generate and load a simulated store of 1,000,000+ events into PostgreSQL.

    .venv/bin/python benchmarks/simulate_store.py [--customers 20000 --items 2000 --days 90]

Uses its own database (DATABASE_URL, default .../marketing_bench, created and migrated if
missing) and replaces the simulated store in it. Prints a JSON line last; `ok` means at
least `--events-target` events were written in under 60 seconds (generation + load).
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketing.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/marketing_bench")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/14")

TARGET_SECONDS = 60


def database_ensure(url: str) -> None:
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    params = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "user": parts.username or "postgres",
        "password": parts.password,
        "dbname": "postgres",
        "autocommit": True,
    }
    with psycopg.connect(**params) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20000)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--events-target", type=int, default=1_000_000)
    args = parser.parse_args()

    database_ensure(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command

    from marketing.simulation.events import estimate_events, generate_events
    from marketing.simulation.load import store_simulate
    from marketing.simulation.store import StoreConfig, generate_truth

    call_command("migrate", verbosity=0)
    config = StoreConfig(customers=args.customers, items=args.items, days=args.days, seed=args.seed)
    stages: dict[str, float] = {}
    started = time.perf_counter()
    last = [started]

    def progress(stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        stages[stage] = stages.get(stage, 0.0) + now - last[0]
        last[0] = now
        if stage == "events":
            print(f"  events {done:,} / {total:,}  {now - started:.1f}s", file=sys.stderr)

    counts = store_simulate(config=config, reset=True, progress=progress)
    seconds = time.perf_counter() - started
    # Generation alone, for the split between numpy and PostgreSQL.
    t0 = time.perf_counter()
    generated = sum(len(c) for c in generate_events(generate_truth(config)))
    generation_seconds = time.perf_counter() - t0
    result = {
        "benchmark": "simulate_store",
        "customers": args.customers,
        "items": args.items,
        "days": args.days,
        "events": counts["events"],
        "estimated_events": estimate_events(config),
        "seconds": round(seconds, 2),
        "events_per_s": round(counts["events"] / seconds),
        "generation_only_seconds": round(generation_seconds, 2),
        "stage_seconds": {k: round(v, 2) for k, v in stages.items()},
        "target_seconds": TARGET_SECONDS,
        "events_target": args.events_target,
        "ok": counts["events"] >= args.events_target
        and seconds < TARGET_SECONDS
        and generated == counts["events"],
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

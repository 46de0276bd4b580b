"""CSV import of interactions (Amazon Personalize format) through the import service.

Generates a seeded interactions file (1,000,000 rows by default) in a temp dir, imports it
in-process on a scratch database exactly as the Celery task does (ImportFile + Job +
report), then imports the same file again, which must store nothing. Prints JSON on its
last line; "ok" needs every row imported in under 120 s and an idempotent second run.

    .venv/bin/python benchmarks/import_interactions.py [--rows 1000000]
"""

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DB = "marketing_bench_import"
PG = "postgres://postgres@127.0.0.1:5432"
EVENT_TYPES = ["Watch"] * 6 + ["Click"] * 2 + ["Add to cart", "Purchase", "Rating"]
TARGET_SECONDS = 120


def _env(media_root: str) -> dict:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="marketing.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="bench-secret",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=f"{PG}/{DB}",
        REDIS_URL=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
        DJANGO_MEDIA_ROOT=media_root,
        DJANGO_STATICFILES_STORAGE="django.contrib.staticfiles.storage.StaticFilesStorage",
        LOG_LEVEL="WARNING",
    )
    return env


def _reset_database(env: dict) -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)


def _generate(path: Path, rows: int, users: int, items: int, seed: int) -> None:
    rng = random.Random(seed)
    end = int(time.time()) - 3600
    start = end - 2 * 365 * 86400
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["USER_ID", "ITEM_ID", "EVENT_VALUE", "EVENT_TYPE", "TIMESTAMP"])
        for _ in range(rows):
            kind = rng.choice(EVENT_TYPES)
            value = rng.randint(1, 5) if kind in ("Watch", "Rating") else ""
            if kind == "Purchase":
                value = f"{rng.uniform(2, 200):.2f}"
            writer.writerow(
                [
                    f"u{rng.randrange(users)}",
                    f"i{rng.randrange(items)}",
                    value,
                    kind,
                    rng.randint(start, end),
                ]
            )


def _import(path: Path) -> tuple[float, object]:
    from marketing.imports_services import import_file_create, import_file_run

    started = time.perf_counter()
    import_file = import_file_create(kind="interactions", source_path=path, schedule=False)
    import_file = import_file_run(import_file_id=import_file.pk)
    return time.perf_counter() - started, import_file


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        env = _env(str(Path(tmp) / "media"))
        _reset_database(env)
        path = Path(tmp) / "interactions.csv"
        started = time.perf_counter()
        _generate(path, args.rows, args.users, args.items, args.seed)
        generate_seconds = time.perf_counter() - started

        os.environ.update(env)
        import django

        django.setup()
        from profiles.models import Customer, Event, FeatureBacklog

        seconds, first = _import(path)
        events = Event.objects.count()
        backlog = FeatureBacklog.objects.count()
        customers = Customer.objects.count()
        again_seconds, second = _import(path)
        events_after = Event.objects.count()

    result = {
        "benchmark": "import_interactions",
        "rows": first.rows,
        "file_mb": round(first.size / 1e6, 1),
        "generate_seconds": round(generate_seconds, 2),
        "seconds": round(seconds, 2),
        "rows_per_s": round(first.rows / seconds),
        "imported": first.imported,
        "rejected": first.rejected,
        "events_stored": events,
        "queued_for_features": backlog,
        "customers_created": customers,
        "second_run_seconds": round(again_seconds, 2),
        "second_run_imported": second.imported,
        "second_run_unchanged": second.unchanged,
        "events_after_second_run": events_after,
        "target_seconds": TARGET_SECONDS,
        "cpus": os.cpu_count(),
    }
    result["ok"] = (
        first.rows == args.rows
        and first.imported == args.rows
        and seconds < TARGET_SECONDS
        and second.imported == 0
        and events_after == events
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()

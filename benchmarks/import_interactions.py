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
import tempfile
import time
from pathlib import Path

from _scratch import bench_env, database_reset, django_setup

DB = "marketing_bench_import"
EVENT_TYPES = ["Watch"] * 6 + ["Click"] * 2 + ["Add to cart", "Purchase", "Rating"]
TARGET_SECONDS = 120


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
        env = bench_env(DB, redis_db=13, DJANGO_MEDIA_ROOT=str(Path(tmp) / "media"))
        database_reset(DB, env)
        path = Path(tmp) / "interactions.csv"
        started = time.perf_counter()
        _generate(path, args.rows, args.users, args.items, args.seed)
        generate_seconds = time.perf_counter() - started

        django_setup(env)
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

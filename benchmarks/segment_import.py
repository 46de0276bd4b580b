"""Imported segments: a 100,000-row CSV of customer ids, then of emails, resolved against
300,000 customers on a scratch database, as the Celery task does it (read, one query per
chunk, then the segment's members set-based). Half the rows name no customer and some
repeat. Prints JSON on its last line; "ok" needs each import under 20 s.

    .venv/bin/python benchmarks/segment_import.py [--rows 100000] [--customers 300000]
"""

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from _scratch import bench_env, database_reset, django_setup

DB = "marketing_bench_segment_import"
TARGET_SECONDS = 20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=300_000)
    args = parser.parse_args()
    env = bench_env(DB, redis_db=13)
    database_reset(DB, env)
    django_setup(env)
    from django.db import connection

    from profiles.segments.imports import segment_import_file

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO profiles_customer (external_id, is_anonymous, email, phone, "
            "first_name, last_name, country, timezone, language, gender, attributes, "
            "created_at, updated_at) SELECT 'c-' || g, false, 'Shopper' || g || '@Example.com', "
            "'', '', '', '', '', '', '', '{}', now(), now() FROM generate_series(1, %s) g",
            [args.customers],
        )
        cursor.execute("ANALYZE profiles_customer")
    rng = random.Random(7)
    numbers = [rng.randint(1, 2 * args.customers) for _ in range(args.rows)]
    result: dict = {"rows": args.rows, "customers": args.customers}
    with tempfile.TemporaryDirectory() as tmp:
        files = {
            "ids": ("customer_id", [f"c-{n}" for n in numbers]),
            "emails": ("email", [f"shopper{n}@example.com" for n in numbers]),
        }
        for name, (column, values) in files.items():
            path = Path(tmp) / f"{name}.csv"
            path.write_text(column + "\n" + "\n".join(values) + "\n")
            started = time.monotonic()
            segment, report = segment_import_file(path=path, file_name=path.name, name=name)
            result[name] = {
                "seconds": round(time.monotonic() - started, 2),
                "matched": report.matched,
                "duplicates": report.duplicates,
                "unknown": report.unknown,
                "members": segment.member_count,
            }
    result["ok"] = all(result[name]["seconds"] < TARGET_SECONDS for name in files) and (
        result["ids"]["members"] == result["emails"]["members"]
    )
    print(json.dumps(result))  # noqa: T201


if __name__ == "__main__":
    main()

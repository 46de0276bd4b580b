"""Load test: what storefronts and marketers do at once, against gunicorn over loopback.

    .venv/bin/python benchmarks/load_mix.py [--users 20 --seconds 60 --workers 2]
        [--think 0.5] [--customers 5000 --items 500 --days 30] [--keep] [--db NAME]

A scratch database (dropped and created; `--keep` reuses it when it holds a store) gets the
simulated store (marketing.simulation: customers, items, events, demo offers, segments and
campaigns), its profile features, a popularity model, a running experiment, an API key with
the storefront scopes and a Marketer login. gunicorn serves it on 127.0.0.1 with `--workers`
sync workers (DEBUG off, the rate limit lifted), and locust (headless, in its own process,
benchmarks/_load_mix_locust.py) runs `--users` users for `--seconds`: 5 storefront sessions
(event batches of 50, recommendations, offer rank then reward for half of them, experiment
assignment) for each marketer (login form, then dashboard, segment list, campaign list).
`--think` is each user's pause between requests (uniform 0..think seconds; 0: closed loop
at full speed, which is how scale_out.py measures the throughput).

No Celery worker runs: the tasks that ingestion schedules wait in Redis and are purged at
the end, so the figures are the web tier's. Locust is closed loop (a slow answer delays the
user's next request), and its percentiles are rounded to 2 significant digits above 100 ms.
The locust process shares the 2 cores; its CPU time is reported. JSON on the last line:
throughput, and requests, failures, p50/p95/p99 per endpoint, with the errors seen.
"""

import argparse
import csv
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from _scratch import (
    PG,
    ROOT,
    bench_env,
    database_reset,
    django_setup,
    free_port,
    gunicorn_start,
    wait_listening,
)

DB = "marketing_bench_load_mix"
LOCUSTFILE = Path(__file__).with_name("_load_mix_locust.py")
EXPERIMENT = "load-mix"
USERNAME = "load-marketer"
PASSWORD = "load-mix-password-7"  # noqa: S105 - a scratch database's throwaway login
SCOPES = ["events:write", "recommendations:read", "offers:read", "offers:write"]
SCOPES += ["experiments:assign"]


def _store_exists(db: str) -> bool:
    try:
        with psycopg.connect(f"{PG}/{db}") as conn:
            row = conn.execute("SELECT count(*) FROM profiles_customer").fetchone()
    except psycopg.Error:
        return False
    return bool(row and row[0])


def _prepare(args, env: dict) -> dict:
    """Load the store and everything the users need; returns the locust config."""
    fresh = not args.keep or not _store_exists(args.db)
    if fresh:
        database_reset(args.db, env)
    django_setup(env)
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from experiments.services import MetricSpec, VariantSpec, experiment_create, experiment_start
    from marketing.roles import MARKETER, roles_sync
    from marketing.services import api_key_create
    from marketing.simulation.load import store_simulate
    from marketing.simulation.store import StoreConfig, generate_truth
    from profiles.services import features_rebuild
    from recommender.services import model_train_popularity

    # The store ends today, so its demo offers are live and the dashboard shows recent days.
    today = datetime.now(tz=UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    config = StoreConfig(
        customers=args.customers,
        items=args.items,
        days=args.days,
        seed=7,
        start=today - timedelta(days=args.days - 1),
    )
    truth = generate_truth(config)
    if fresh:
        store_simulate(config=config, reset=True)
        features_rebuild(repair=True)
        model_train_popularity()
        experiment_start(
            experiment=experiment_create(
                key=EXPERIMENT,
                variants=[VariantSpec(key="control"), VariantSpec(key="new-banner")],
                metric=MetricSpec(event_type="purchase", window_days=7),
            )
        )
        roles_sync()
        user = get_user_model().objects.create_user(username=USERNAME, password=PASSWORD)
        user.groups.add(Group.objects.get(name=MARKETER))
        with psycopg.connect(f"{PG}/{args.db}", autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
            conn.execute("CHECKPOINT")
    _, key = api_key_create(name=f"load-mix-{time.time():.0f}", scopes=SCOPES)
    return {
        "api_key": key,
        "customers": list(truth.customer_external_ids[: min(2000, args.customers)]),
        "items": list(truth.item_external_ids),
        "experiment": EXPERIMENT,
        "username": USERNAME,
        "password": PASSWORD,
        "think_seconds": args.think,
        "event_batch": args.event_batch,
    }


def _warm(port: int, config: dict, workers: int) -> None:
    """A few requests per worker so that no worker imports views during the measurement."""
    headers = {"Authorization": f"Api-Key {config['api_key']}"}
    path = f"/api/v1/customers/{config['customers'][0]}/recommendations"
    for _ in range(4 * workers):
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
            response.read()


def _group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of the live processes in process group `pgid` (gunicorn's
    master and workers)."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _ms(value: str) -> float | None:
    return None if value in ("", "N/A") else round(float(value), 1)


def _parse(prefix: Path) -> dict:
    """The endpoint rows of locust's CSV stats and its failures."""
    endpoints, total = {}, {}
    with open(f"{prefix}_stats.csv", newline="") as f:
        for row in csv.DictReader(f):
            figures = {
                "requests": int(row["Request Count"]),
                "failures": int(row["Failure Count"]),
                "rps": round(float(row["Requests/s"]), 1),
                "p50_ms": _ms(row["50%"]),
                "p95_ms": _ms(row["95%"]),
                "p99_ms": _ms(row["99%"]),
                "max_ms": _ms(row["Max Response Time"]),
            }
            if row["Name"] == "Aggregated":
                total = figures
            else:
                endpoints[row["Name"]] = figures
    errors = []
    failures = Path(f"{prefix}_failures.csv")
    if failures.exists():
        with open(failures, newline="") as f:
            for row in csv.DictReader(f):
                errors.append(
                    {
                        "endpoint": row["Name"],
                        "error": row["Error"][:300],
                        "count": int(row["Occurrences"]),
                    }
                )
    return {"total": total, "endpoints": endpoints, "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20, help="locust users (5 shops : 1 marketer)")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--think", type=float, default=0.5, help="max pause between requests")
    parser.add_argument("--event-batch", type=int, default=50, help="events per POST")
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--redis-db", type=int, default=10)
    parser.add_argument("--db", default=DB, help="the scratch database (dropped and created)")
    parser.add_argument("--keep", action="store_true", help="reuse the store already loaded")
    args = parser.parse_args()

    # Plain HTTP on loopback: cookies without the Secure flag (behind TLS they keep it).
    env = bench_env(
        args.db, redis_db=args.redis_db, DJANGO_CONN_MAX_AGE="60", DJANGO_SECURE_COOKIES="0"
    )
    started = time.perf_counter()
    config = _prepare(args, env)
    setup_seconds = time.perf_counter() - started

    port = free_port()
    web = gunicorn_start(port=port, workers=args.workers, env=env)
    load_start = os.getloadavg()
    try:
        wait_listening(port)
        _warm(port, config, args.workers)
        with tempfile.TemporaryDirectory() as tmp:
            config_file = Path(tmp) / "config.json"
            config_file.write_text(json.dumps(config))
            prefix = Path(tmp) / "mix"
            cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
            server_before = _group_cpu_seconds(web.pid)
            command = [
                sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
                "--users", str(args.users), "--spawn-rate", str(args.users),
                "--run-time", f"{args.seconds}s", "--stop-timeout", "5",
                "--host", f"http://127.0.0.1:{port}", "--csv", str(prefix),
                "--only-summary", "--loglevel", "WARNING",
            ]  # fmt: skip
            locust = subprocess.run(
                command,
                cwd=ROOT,
                env={**os.environ, "LOAD_MIX_CONFIG": str(config_file)},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                timeout=args.seconds + 120,
                check=False,
            )
            cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
            server_cpu = _group_cpu_seconds(web.pid) - server_before
            if not Path(f"{prefix}_stats.csv").exists():
                sys.stderr.write(locust.stderr[-3000:])
                raise SystemExit(f"locust wrote no stats (exit {locust.returncode})")
            figures = _parse(prefix)
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=30)
        from marketing.celery import app

        app.control.purge()  # the wake-up tasks ingestion scheduled (no worker ran)

    total = figures["total"]
    result = {
        "benchmark": "load_mix",
        "gunicorn_workers": args.workers,
        "users": args.users,
        "think_seconds": args.think,
        "seconds": args.seconds,
        "customers": args.customers,
        "requests": total.get("requests", 0),
        "failures": total.get("failures", 0),
        "error_rate": round(total.get("failures", 0) / max(1, total.get("requests", 0)), 5),
        "rps": total.get("rps", 0.0),
        "events_per_s": round(
            figures["endpoints"].get("POST /api/v1/events (batch)", {}).get("rps", 0.0)
            * args.event_batch
        ),
        "p50_ms": total.get("p50_ms"),
        "p95_ms": total.get("p95_ms"),
        "p99_ms": total.get("p99_ms"),
        "endpoints": figures["endpoints"],
        "errors": figures["errors"][:20],
        # CPU per request of gunicorn (all workers): a figure the machine's other load
        # changes much less than the throughput
        "server_cpu_ms_per_request": round(server_cpu * 1000 / max(1, total.get("requests", 0)), 2),
        "client_cpu_seconds": round(
            cpu_after.ru_utime + cpu_after.ru_stime - cpu_before.ru_utime - cpu_before.ru_stime,
            1,
        ),
        "setup_seconds": round(setup_seconds, 1),
        "load_average_at_start": [round(x, 2) for x in load_start],
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))  # noqa: T201 - a benchmark reports on stdout


if __name__ == "__main__":
    main()

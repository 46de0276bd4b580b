"""Benchmark: the results of one experiment (experiments.results.experiment_results_compute)
over many exposed customers and their events: the primary metric with CUPED covariate and
daily timeline, one guardrail, the stored sequential looks.

    .venv/bin/python benchmarks/experiment_results.py [--customers 200000] [--events-per 10]
        [--runs 5] [--reload]

The scratch database (marketing_bench_exp_results) holds `customers` customers, each exposed
to one of three variants over 30 days, and about `events_per` events each (views, purchases
with a value, unsubscribes) spread over the 60 days around, loaded with COPY and analyzed. It
is kept between runs while its counts match. Reports the computation (first run and median
of the others) and the per-variant figures; JSON on the last line.
"""

import argparse
import io
import json
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
from _scratch import PG, bench_env, database_reset, django_setup

DB = "marketing_bench_exp_results"
_ENV = bench_env(DB, redis_db=9)
START = datetime(2026, 10, 1, tzinfo=UTC)
RATES = {"control": 0.040, "b": 0.046, "c": 0.040}  # purchase within 7 days of exposure


def _counts(conn) -> tuple[int, int]:
    try:
        customers = conn.execute("SELECT count(*) FROM experiments_exposure").fetchone()[0]
        events = conn.execute("SELECT count(*) FROM profiles_event").fetchone()[0]
    except psycopg.Error:
        return 0, 0
    return customers, events


def _copy(conn, table: str, columns: str, rows: io.StringIO) -> None:
    rows.seek(0)
    with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        while chunk := rows.read(1 << 20):
            copy.write(chunk)


def load(customers: int, events_per: int, seed: int = 7) -> int:
    database_reset(DB, _ENV)
    rng = np.random.default_rng(seed)
    with psycopg.connect(f"{PG}/{DB}", autocommit=True) as conn:
        conn.execute(
            "INSERT INTO profiles_customer (created_at, updated_at, external_id, is_anonymous, "
            "email, phone, first_name, last_name, country, timezone, language, gender, "
            "attributes) SELECT now(), now(), 'c' || g, false, 'c' || g || '@example.com', "
            "'', '', '', '', '', '', '', '{}' FROM generate_series(0, %s - 1) g",
            [customers],
        )
        first = conn.execute("SELECT min(id) FROM profiles_customer").fetchone()[0]
        conn.execute(
            "INSERT INTO experiments_experiment (key, name, kind, status, hypothesis, salt, "
            "traffic_percent, holdout_percent, metric_event_type, metric_window_days, "
            "metric_kind, guardrails, allocation, bandit_burn_in, bandit_min_share, "
            "bandit_epsilon, started_at, created_at, updated_at) VALUES ('bench', 'bench', "
            "'ab', 'running', '', 'salt', 100, 0, 'purchase', 7, 'conversion', "
            '\'[{"event_type": "unsubscribe", "window_days": 7, "kind": "conversion"}]\', '
            "'fixed', 100, 0.01, 0.1, %s, now(), now())",
            [START],
        )
        exp = conn.execute("SELECT id FROM experiments_experiment").fetchone()[0]
        variant_ids = []
        for key in RATES:
            variant_ids.append(
                conn.execute(
                    "INSERT INTO experiments_variant (experiment_id, key, name, weight, "
                    "is_control, config) VALUES (%s, %s, %s, 1, %s, '{}') RETURNING id",
                    [exp, key, key, key == "control"],
                ).fetchone()[0]
            )
        arm = rng.integers(0, 3, customers)
        exposed = START + timedelta(days=0)
        offsets = rng.uniform(0, 30 * 86400, customers)
        buf = io.StringIO()
        for i in range(customers):
            at = exposed + timedelta(seconds=float(offsets[i]))
            buf.write(f"{exp}\t{first + i}\t{variant_ids[arm[i]]}\t{at.isoformat()}\t0.3333\n")
        _copy(conn, "experiments_exposure",
              "experiment_id, customer_id, variant_id, exposed_at, propensity", buf)  # fmt: skip
        # Background events over the 60 days around, and the purchases the arms cause.
        n = customers * events_per
        who = rng.integers(0, customers, n)
        when = rng.uniform(-15 * 86400, 45 * 86400, n)
        kind = rng.choice(["view", "purchase", "unsubscribe"], n, p=[0.95, 0.045, 0.005])
        rates = np.array([RATES[k] for k in RATES])
        converts = rng.random(customers) < rates[arm]
        buf = io.StringIO()
        for j in range(n):
            at = START + timedelta(seconds=float(when[j]))
            value = "25.00" if kind[j] == "purchase" else "\\N"
            buf.write(f"{first + who[j]}\t{kind[j]}\t{value}\t{at.isoformat()}\n")
        for i in np.flatnonzero(converts):
            at = START + timedelta(seconds=float(offsets[i] + rng.uniform(0, 6 * 86400)))
            buf.write(f"{first + i}\tpurchase\t40.00\t{at.isoformat()}\n")
        for column in ("event_id", "received_at", "properties", "item_external_id", "channel"):
            default = {"event_id": "gen_random_uuid()", "received_at": "now()",
                       "properties": "'{}'::jsonb"}.get(column, "''")  # fmt: skip
            conn.execute(f"ALTER TABLE profiles_event ALTER COLUMN {column} SET DEFAULT {default}")
        _copy(conn, "profiles_event", "customer_id, type, value, occurred_at", buf)
        conn.execute("VACUUM ANALYZE")
        return _counts(conn)[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--events-per", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--reload", action="store_true")
    args = parser.parse_args()
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB]).fetchone()
    counts = (0, 0)
    if exists:
        with psycopg.connect(f"{PG}/{DB}") as conn:
            counts = _counts(conn)
    if args.reload or counts[0] != args.customers:
        t0 = time.perf_counter()
        events = load(args.customers, args.events_per)
        print(f"loaded {args.customers} exposures, {events} events in "
              f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)  # noqa: T201  # fmt: skip
        counts = (args.customers, events)
    django_setup(_ENV)
    from experiments.models import Experiment
    from experiments.results import experiment_results_compute

    experiment = Experiment.objects.get(key="bench")
    timings, results = [], {}
    for _ in range(args.runs):
        t0 = time.perf_counter()
        results = experiment_results_compute(experiment=experiment)
        timings.append(time.perf_counter() - t0)
    comparisons = {c["variant"]: c for c in results["analysis"]["comparisons"]}
    summary = {
        "exposures": counts[0],
        "events": counts[1],
        "first_seconds": round(timings[0], 3),
        "median_seconds": round(statistics.median(timings[1:] or timings), 3),
        "days": len(results["timeline"]["days"]),
        "variants": {
            v["key"]: {
                "users": v["users"],
                "rate": round(v["mean"], 5),
                "p_z": round(comparisons[v["key"]]["test"]["p_value"], 5)
                if v["key"] in comparisons
                else None,
            }
            for v in results["variants"]
        },
        "cuped_variance_reduction": round(results["cuped"]["variance_reduction"], 4),
        "decision": results["decision"]["message"],
    }
    print(json.dumps(summary))  # noqa: T201


if __name__ == "__main__":
    main()

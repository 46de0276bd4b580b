"""Recommendation API latency at a fixed request rate, next to a bare Django JSON view.

Builds a scratch database (simulated store, popularity trained, a "hybrid" version whose
per-customer lists are the simulation's true top items, an item-item version with similar
lists), starts gunicorn (sync workers, DEBUG off, BENCHMARK_VIEWS on) and drives it over
loopback with an open-loop generator: requests are scheduled at exact intervals and latency
is measured from the scheduled send time, so a stalled server is not hidden by a waiting
client (no coordinated omission). The bare view and the API are measured in the same run.
Prints JSON on its last line; ok = API p99 < 25 ms at >= 295 requests/s.

    .venv/bin/python benchmarks/recommendations_latency.py [--rate 300] [--seconds 30]
"""

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psycopg
from _scratch import (
    PG,
    bench_env,
    database_reset,
    django_setup,
    free_port,
    gunicorn_start,
    open_loop_drive,
    wait_listening,
)

DB = "marketing_bench_serving"
_ENV = bench_env(DB, redis_db=8, BENCHMARK_VIEWS="1")

LIST_LENGTH = 50
TARGET_P99_MS = 25.0
# With --gc-freeze each worker moves everything loaded at start-up out of the collector's
# reach, so full collections scan only what requests allocate (a tuning to try, not default).
GC_FREEZE_CONFIG = """
def post_worker_init(worker):
    import gc

    import marketing.urls  # noqa: F401 - load the views and DRF before freezing

    gc.collect()
    gc.freeze()
"""


def _prepare(customers: int, items: int, days: int) -> tuple[str, list[str], dict]:
    """Load the store and the models; returns (API key, customer ids, setup figures)."""
    from django.core.cache import cache

    from marketing.services import api_key_create
    from marketing.simulation.load import store_simulate
    from marketing.simulation.store import StoreConfig, generate_truth
    from profiles.models import Customer
    from profiles.services import features_rebuild
    from recommender.models import Item, ModelStatus, ModelVersion
    from recommender.services import model_train_popularity
    from recommender.serving_services import (
        modelversion_activate,
        recommendation_lists_store,
        similar_lists_store,
    )

    cache.clear()
    figures: dict = {}
    started = time.perf_counter()
    config = StoreConfig(customers=customers, items=items, days=days)
    store_simulate(config=config)
    features_rebuild(repair=True)
    figures["load_s"] = round(time.perf_counter() - started, 1)
    model_train_popularity()

    truth = generate_truth(config)
    customer_pks = dict(Customer.objects.values_list("external_id", "pk"))
    item_pks = dict(Item.objects.values_list("external_id", "pk"))
    customer_ids = truth.customer_external_ids
    item_ids = np.array(truth.item_external_ids)

    started = time.perf_counter()
    hybrid = ModelVersion.objects.create(algorithm="hybrid", status=ModelStatus.READY)

    def hybrid_rows():
        for lo in range(0, truth.n_customers, 1000):
            block = truth.true_affinity_block(slice(lo, min(lo + 1000, truth.n_customers)))
            top = np.argpartition(-block, LIST_LENGTH, axis=1)[:, :LIST_LENGTH]
            for row, candidates in enumerate(top):
                scores = block[row, candidates]
                order = candidates[np.argsort(-scores, kind="stable")]
                yield (
                    customer_pks[customer_ids[lo + row]],
                    item_ids[order].tolist(),
                    block[row, order].round(4).tolist(),
                )

    figures["recommendation_lists"] = recommendation_lists_store(version=hybrid, rows=hybrid_rows())
    modelversion_activate(version=hybrid)

    latent = truth.item_latent / (np.linalg.norm(truth.item_latent, axis=1, keepdims=True) + 1e-9)
    similarity = latent @ latent.T + 0.5 * (
        truth.item_category[:, None] == truth.item_category[None, :]
    )
    np.fill_diagonal(similarity, -np.inf)
    item_item = ModelVersion.objects.create(algorithm="item_item", status=ModelStatus.READY)

    def similar_rows():
        top = np.argsort(-similarity, axis=1, kind="stable")[:, :LIST_LENGTH]
        for index, order in enumerate(top):
            yield (
                item_pks[item_ids[index]],
                item_ids[order].tolist(),
                similarity[index, order].round(4).tolist(),
            )

    figures["similar_lists"] = similar_lists_store(version=item_item, rows=similar_rows())
    modelversion_activate(version=item_item)
    figures["lists_s"] = round(time.perf_counter() - started, 1)
    _, key = api_key_create(name="bench", scopes=["recommendations:read"])
    # Settle the database so autovacuum and checkpoints do not run during the measurement.
    with psycopg.connect(f"{PG}/{DB}", autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")
    return key, customer_ids, figures


def _drive(port: int, paths: list[str], *, rate: float, seconds: float, key: str) -> dict:
    """GET `rate` x `seconds` of the paths (cycled) at `rate`, open loop."""
    n = int(rate * seconds)
    calls = [(paths[index % len(paths)], b"") for index in range(n)]
    headers = {"Authorization": f"Api-Key {key}", "Connection": "keep-alive"}
    return open_loop_drive(port, calls, rate=rate, headers=headers)


def _cpu_seconds(pattern: str) -> float:
    """User + system CPU seconds of the processes whose command line contains `pattern`."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if pattern not in f.read().decode(errors="ignore"):
                    continue
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _measure(port: int, paths: list[str], *, rate: float, seconds: float, key: str) -> dict:
    """_drive plus the CPU milliseconds per request of the server side and of this client."""
    names = {"gunicorn": "gunicorn", "postgres": "postgres", "redis": "redis-server"}
    before = {name: _cpu_seconds(pattern) for name, pattern in names.items()}
    client = time.process_time()
    figures = _drive(port, paths, rate=rate, seconds=seconds, key=key)
    n = figures["requests"]
    figures["cpu_ms_per_request"] = {
        **{
            name: round((_cpu_seconds(pattern) - before[name]) * 1000 / n, 2)
            for name, pattern in names.items()
        },
        "client": round((time.process_time() - client) * 1000 / n, 2),
    }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=2_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rate", type=float, default=300.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() in each worker")
    args = parser.parse_args()
    load = os.getloadavg()[0]

    database_reset(DB, _ENV)
    django_setup(_ENV)
    key, customer_ids, figures = _prepare(args.customers, args.items, args.days)

    rng = random.Random(args.seed)
    n = int(args.rate * args.seconds)
    api_paths = [
        f"/api/v1/customers/{rng.choice(customer_ids)}/recommendations?k=10" for _ in range(n)
    ]
    mixed_paths = []
    for path in api_paths[:n]:
        roll = rng.random()
        if roll < 0.2:
            path += "&strategy=because_you_viewed"
        elif roll < 0.3:
            path += "&in_stock=true&exclude=purchased,viewed"
        mixed_paths.append(path)
    warm_paths = [
        f"/api/v1/customers/{rng.choice(customer_ids)}/recommendations?k=10" for _ in range(1500)
    ]

    port = free_port()
    extra = []
    if args.gc_freeze:
        config = Path(tempfile.mkdtemp()) / "gunicorn_gc_freeze.py"
        config.write_text(GC_FREEZE_CONFIG)
        extra = ["-c", str(config)]
    web = gunicorn_start(port=port, workers=args.workers, env=_ENV, extra=extra)
    try:
        wait_listening(port)
        # Warm-up: every worker loads its snapshot and its connections (not measured).
        _drive(port, warm_paths, rate=args.rate, seconds=5, key=key)
        _drive(port, ["/bench/bare"], rate=100, seconds=1, key=key)
        bare = _measure(port, ["/bench/bare"], rate=args.rate, seconds=args.seconds, key=key)
        api = _measure(port, mixed_paths, rate=args.rate, seconds=args.seconds, key=key)
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=30)

    for name, figures_ in (("bare Django JSON view", bare), ("recommendations API", api)):
        sys.stdout.write(
            f"{name:>24}: {figures_['achieved_rps']} req/s, p50 {figures_['p50_ms']} ms, "
            f"p90 {figures_['p90_ms']} ms, p99 {figures_['p99_ms']} ms, "
            f"max {figures_['max_ms']} ms, non-200 {figures_['non_200']}, "
            f"CPU ms/request {figures_['cpu_ms_per_request']}\n"
        )
    result = {
        "benchmark": "recommendations_latency",
        "customers": args.customers,
        "items": args.items,
        "days": args.days,
        "gunicorn_workers": args.workers,
        "gc_freeze": args.gc_freeze,
        "target_rps": args.rate,
        "seconds": args.seconds,
        "mix": "70% default, 20% because_you_viewed, 10% in_stock + exclude purchased,viewed",
        **{f"setup_{k}": v for k, v in figures.items()},
        "bare": bare,
        "api": api,
        "target_p99_ms": TARGET_P99_MS,
        # Other processes on the machine take CPU from the server and skew the figures.
        "load_average_at_start": round(load, 2),
        "ok": api["p99_ms"] < TARGET_P99_MS
        and api["achieved_rps"] >= args.rate - 5
        and api["non_200"] == 0,
    }
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()

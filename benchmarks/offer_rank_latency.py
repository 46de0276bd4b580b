"""Offer Rank API latency: POST /api/v1/offers/rank with 20 inline candidates over loopback.

    .venv/bin/python benchmarks/offer_rank_latency.py [--requests 12000 --rate 200]

A scratch database with the simulated storefront's customers (profiles, consent, segment
memberships; see _offer_bench) and offers, and a served policy trained on 20,000 simulated
rounds (so the weights are dense, as in production). gunicorn (sync workers, DEBUG off) is
driven open loop by `_scratch.open_loop_drive`: requests are due at exact intervals and
latency counts from the due time (no coordinated omission). Each request is a storefront
request (context from the simulation) for a known customer (10% unknown ids), with 20 of the
offers as inline candidates `{id, features}`.

While the load runs, a separate process does what the Celery worker on the offers queue
would (beat's schedule): every 5 s the log processor moves the buffered decisions into
PostgreSQL (rewards drawn for 5% of them, as clicks), every 15 s the learner publishes a new
policy version, which each web worker then reloads on its next request, so reload costs are
in the figures (in a thread of this process it competed for the GIL with the driver's
threads). The CPU each role used per request (gunicorn, the driver, the beat process, the
database's backends, redis-server) and what the rest of the machine took during each phase
are in "cpu", read from /proc. Also reported: the bare Django JSON view (the floor on this
machine) and the rank service alone in-process. JSON on the last line; ok = p99 < 30 ms at
the target rate without errors.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
from _offer_bench import customer_id, customers_create, offers_create
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

DB = "marketing_bench_offer_rank"
TARGET_P99_MS = 30.0
CANDIDATES = 20


def _train_and_publish(storefront, rounds: int, seed: int) -> None:
    """A policy trained on simulated traffic, published as version 1."""
    from recommender.contextual import make_policy
    from recommender.offers_policy import configured_policy_config, ranker_publish

    ranker = make_policy(configured_policy_config())
    rng = np.random.default_rng(seed)
    for _ in range(rounds):
        request = storefront.draw_request(rng)
        batch = ranker.featurize(
            context=request.context,
            customer=storefront.customer_features(request.customer),
            actions=storefront.offers,
        )
        ranking = ranker.rank(batch)
        ranker.update(
            batch, ranking.chosen, storefront.simulate_click(request, ranking.chosen, rng)
        )
    ranker_publish(version=1, ranker=ranker)


def _calls(storefront, n: int, customers: int, seed: int) -> list[tuple[str, bytes]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        request = storefront.draw_request(rng)
        known = rng.random() < 0.9
        picks = rng.choice(len(storefront.offers), CANDIDATES, replace=False)
        body = {
            "customer_id": customer_id(request.customer) if known else f"new-{rng.integers(1e9)}",
            "context": request.context,
            "candidates": [storefront.offers[j] for j in picks],
            "placement": "home_banner",
            "k": 3,
        }
        out.append(("/api/v1/offers/rank", json.dumps(body).encode()))
    return out


def _beat(stop: threading.Event, totals: dict) -> None:
    """The log processor every 5 s (5% of new decisions rewarded 1, the rest 0), the
    learner every 15 s."""
    from django.db import close_old_connections, connection

    from recommender.offers_learning import offer_policy_learn
    from recommender.offers_log import offer_log_process

    last_learn = time.monotonic()
    while not stop.wait(5.0):
        totals["flushed"] += offer_log_process().flushed
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE recommender_offerdecision SET reward = (random() < 0.05)::int, "
                "reward_source = 'api', rewarded_at = now() WHERE reward IS NULL"
            )
        if time.monotonic() - last_learn >= 15.0:
            result = offer_policy_learn()
            totals["learned"] += result.learned
            totals["versions"] = result.version
            last_learn = time.monotonic()
        close_old_connections()


def _beat_main(args) -> None:
    """`--beat`: the beat work in its own process, as a Celery worker on the offers queue
    would do it, until SIGTERM; its totals as JSON on stdout."""
    django_setup(bench_env(args.db, redis_db=args.redis_db))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    totals = {"flushed": 0, "learned": 0, "versions": 1}
    _beat(stop, totals)
    sys.stdout.write(json.dumps(totals) + "\n")


def _beat_start(args, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, __file__, "--beat", "--db", args.db, "--redis-db", str(args.redis_db)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _machine_busy_seconds() -> float:
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(
            int, f.readline().split()[1:9]
        )
    return (user + nice + system + irq + softirq + steal) / _TICK


def _processes(*, web: int, beat: int, db: str) -> dict[str, list[int]]:
    """The pids that serve or drive the benchmark, by role."""
    import psycopg
    import redis
    from django.conf import settings

    with psycopg.connect(f"{PG}/{db}", autocommit=True) as conn:
        backends = [
            row[0]
            for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (db,),
            )
        ]
    info = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"]).info("server")
    return {
        "gunicorn": [web, *_children(web)],
        "driver": [os.getpid()],
        "beat": [beat],
        "postgres": backends,
        "redis": [int(info["process_id"])],
    }


def _cpu_snapshot(groups: dict[str, list[int]]) -> dict:
    return {
        "at": time.monotonic(),
        "machine": _machine_busy_seconds(),
        "pids": {pid: _cpu_seconds(pid) for pids in groups.values() for pid in pids},
    }


def _cpu_per_request(before: dict, groups: dict[str, list[int]], requests: int) -> dict:
    """CPU milliseconds per request by role over the phase that `before` started (pids
    born during the phase counted from 0, pids gone by its end not counted), the machine's
    busy cores and what the rest of the machine (other users) took."""
    after = _cpu_snapshot(groups)
    elapsed = after["at"] - before["at"]
    used = {
        role: sum(
            max(0.0, after["pids"][p] - before["pids"].get(p, 0.0))
            for p in pids
            if after["pids"][p] > 0.0
        )
        for role, pids in groups.items()
    }
    machine = after["machine"] - before["machine"]
    return {
        "ms_per_request": {role: round(1000 * cpu / requests, 2) for role, cpu in used.items()}
        | {"ours_total": round(1000 * sum(used.values()) / requests, 2)},
        "cores": {role: round(cpu / elapsed, 2) for role, cpu in used.items()}
        | {
            "machine_busy": round(machine / elapsed, 2),
            "others": round((machine - sum(used.values())) / elapsed, 2),
        },
    }


def _groups_union(a: dict[str, list[int]], b: dict[str, list[int]]) -> dict[str, list[int]]:
    return {role: sorted(set(a[role]) | set(b.get(role, ()))) for role in a}


def _in_process(calls: list[tuple[str, bytes]]) -> dict:
    from recommender.offers_serving import offers_rank

    ms = []
    for _, body in calls:
        data = json.loads(body)
        started = time.perf_counter()
        offers_rank(
            customer_external_id=data["customer_id"],
            context=data["context"],
            candidates=data["candidates"],
            placement=data["placement"],
            k=data["k"],
        )
        ms.append((time.perf_counter() - started) * 1000)
    return {
        "calls": len(ms),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default=DB, help="the scratch database (dropped and created)")
    parser.add_argument("--redis-db", type=int, default=12, help="unless BENCH_REDIS_URL")
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=12_000)
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers")
    parser.add_argument("--train-rounds", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--beat", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.beat:
        _beat_main(args)
        return
    load = os.getloadavg()[0]
    env = bench_env(args.db, redis_db=args.redis_db, BENCHMARK_VIEWS="1")

    database_reset(args.db, env)
    django_setup(env)
    import psycopg
    from django.core.cache import cache

    from marketing.services import api_key_create
    from marketing.simulation.store import StoreConfig, generate_truth
    from recommender.contextual.simulation import OfferStorefront, StorefrontConfig

    cache.clear()
    truth = generate_truth(StoreConfig(customers=args.customers, items=400))
    storefront = OfferStorefront(truth, StorefrontConfig(offers=40))
    offers_create(storefront)
    customers_create(storefront, args.customers)
    _train_and_publish(storefront, args.train_rounds, args.seed)
    _, key = api_key_create(name="bench", scopes=["offers:read", "offers:write"])
    with psycopg.connect(f"{PG}/{args.db}", autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    calls = _calls(storefront, args.requests, args.customers, args.seed)
    warm = _calls(storefront, 1_000, args.customers, args.seed + 1)
    headers = {
        "Authorization": f"Api-Key {key}",
        "Content-Type": "application/json",
        "Connection": "keep-alive",
    }

    port = free_port()
    web = gunicorn_start(port=port, workers=args.workers, env=env)
    beat = None
    try:
        wait_listening(port)
        open_loop_drive(port, warm, rate=args.rate, headers=headers)
        groups = _processes(web=web.pid, beat=os.getpid(), db=args.db)
        del groups["beat"]
        before = _cpu_snapshot(groups)
        bare = open_loop_drive(
            port, [("/bench/bare", b"")] * 3_000, rate=args.rate, headers=headers
        )
        groups = _groups_union(groups, _processes(web=web.pid, beat=0, db=args.db))
        bare_cpu = _cpu_per_request(before, groups, 3_000)
        beat = _beat_start(args, env)
        time.sleep(2.0)  # its Django set-up is not the beat's steady cost
        groups = _processes(web=web.pid, beat=beat.pid, db=args.db)
        before = _cpu_snapshot(groups)
        rank = open_loop_drive(port, calls, rate=args.rate, headers=headers)
        groups = _groups_union(groups, _processes(web=web.pid, beat=beat.pid, db=args.db))
        rank_cpu = _cpu_per_request(before, groups, len(calls))
    finally:
        if beat is not None:
            beat.send_signal(signal.SIGTERM)
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=30)
    totals = json.loads(beat.communicate(timeout=120)[0].splitlines()[-1])

    service = _in_process(calls[:3_000])
    for name, figures in (("bare Django JSON view", bare), ("offers/rank", rank)):
        sys.stdout.write(
            f"{name:>22}: {figures['achieved_rps']} req/s, p50 {figures['p50_ms']} ms, "
            f"p95 {figures['p95_ms']} ms, p99 {figures['p99_ms']} ms, "
            f"max {figures['max_ms']} ms, non-200 {figures['non_200']}\n"
        )
    result = {
        "benchmark": "offer_rank_latency",
        "customers": args.customers,
        "candidates": CANDIDATES,
        "gunicorn_workers": args.workers,
        "target_rps": args.rate,
        "bare": bare,
        "rank": rank,
        "service_in_process": service,
        "beat_during_load": totals,
        "cpu": {"bare": bare_cpu, "rank": rank_cpu},
        "target_p99_ms": TARGET_P99_MS,
        "load_average_at_start": round(load, 2),
        "ok": rank["p99_ms"] < TARGET_P99_MS
        and rank["non_200"] == 0
        and rank["achieved_rps"] >= args.rate - 5,
    }
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()

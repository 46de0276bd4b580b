"""Event ingestion throughput through the real HTTP batch endpoint, next to a raw COPY.

Starts gunicorn and a Celery worker on a scratch database, posts pre-built batches of 1,000
events from several client threads, then waits until every event is folded into the profile
features. Prints JSON on its last line.

    .venv/bin/python benchmarks/events_ingest.py [--events 300000] [--workers 3]
"""

import argparse
import http.client
import json
import os
import random
import signal
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
from _scratch import (
    PG,
    bench_env,
    celery_worker_start,
    database_reset,
    django_setup,
    free_port,
    gunicorn_start,
    wait_listening,
)

DB = "marketing_bench_events"
_ENV = bench_env(DB, redis_db=9)

EVENT_TYPES = ["view"] * 6 + ["click"] * 2 + ["add_to_cart", "purchase", "offer_shown"]


def _batches(n_events: int, customers: int, items: int, seed: int) -> list[list[dict]]:
    rng = random.Random(seed)
    start = datetime.now(tz=UTC) - timedelta(hours=1)
    events = []
    for i in range(n_events):
        kind = rng.choice(EVENT_TYPES)
        events.append(
            {
                "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "customer_id": f"bench-{rng.randrange(customers)}",
                "type": kind,
                "item_id": f"sku-{rng.randrange(items)}",
                "value": round(rng.uniform(5, 200), 2) if kind == "purchase" else None,
                "channel": rng.choice(["web", "app"]),
                "timestamp": (start + timedelta(milliseconds=i * 5)).isoformat(),
            }
        )
    return [events[i : i + 1000] for i in range(0, len(events), 1000)]


def _post_all(
    port: int, key: str, bodies: list[bytes], threads: int, rate: float = 0.0
) -> tuple[float, int, int]:
    """Post every body; with `rate` (events/s) the batches are paced to that rate."""
    lock = threading.Lock()
    queue = list(range(len(bodies)))[::-1]
    sent = [0]
    totals = {"accepted": 0, "duplicates": 0, "errors": 0}

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Content-Type": "application/json", "Authorization": f"Api-Key {key}"}
        while True:
            with lock:
                if not queue:
                    break
                index = queue.pop()
                due = started + sent[0] * 1000 / rate if rate else 0.0
                sent[0] += 1
            if rate and (wait := due - time.perf_counter()) > 0:
                time.sleep(wait)
            conn.request("POST", "/api/v1/events", body=bodies[index], headers=headers)
            response = conn.getresponse()
            body = response.read()
            with lock:
                if response.status == 202:
                    data = json.loads(body)
                    totals["accepted"] += data["accepted"]
                    totals["duplicates"] += data["duplicates"]
                else:
                    totals["errors"] += 1
        conn.close()

    started = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return time.perf_counter() - started, totals["accepted"], totals["errors"]


def _copy_baseline(batches: list[list[dict]], customer_pks: dict[str, int]) -> float:
    """The same rows by a raw COPY into a table shaped like profiles_event."""
    with psycopg.connect(f"{PG}/{DB}") as conn:
        conn.execute("DROP TABLE IF EXISTS copy_baseline")
        conn.execute("CREATE TABLE copy_baseline (LIKE profiles_event INCLUDING ALL)")
        conn.commit()
        started = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY copy_baseline (event_id, customer_id, type, item_external_id, value, "
                "channel, campaign_id, occurred_at, received_at, properties) FROM STDIN"
            ) as copy,
        ):
            now = datetime.now(tz=UTC)
            for batch in batches:
                for e in batch:
                    copy.write_row(
                        (
                            e["event_id"],
                            customer_pks[e["customer_id"]],
                            e["type"],
                            e["item_id"],
                            e["value"],
                            e["channel"],
                            None,
                            e["timestamp"],
                            now,
                            "{}",
                        )
                    )
        conn.commit()
        seconds = time.perf_counter() - started
        conn.execute("DROP TABLE copy_baseline")
        conn.commit()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--items", type=int, default=2_000)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="client connections")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="pace the client to this many events/s (0: as fast as the server takes them)",
    )
    args = parser.parse_args()

    database_reset(DB, _ENV)
    django_setup(_ENV)
    from django.core.cache import cache

    from marketing.services import api_key_create
    from profiles.models import Customer, CustomerFeatures, FeatureBacklog
    from recommender.models import Item

    cache.clear()
    Item.objects.bulk_create(
        Item(external_id=f"sku-{i}", title=f"Item {i}", category=f"cat-{i % 12}")
        for i in range(args.items)
    )
    _, key = api_key_create(name="bench", scopes=["events:write"])
    batches = _batches(args.events, args.customers, args.items, args.seed)
    bodies = [json.dumps(b).encode() for b in batches]

    port = free_port()
    env = _ENV
    web = gunicorn_start(port=port, workers=args.workers, env=env)
    worker = celery_worker_start(env=env, queues="ingest,default", concurrency=1)
    try:
        wait_listening(port)
        time.sleep(2)
        seconds, accepted, errors = _post_all(port, key, bodies, args.threads, args.rate)
        last_response = time.perf_counter()
        lag = None
        while time.perf_counter() - last_response < 120:
            if not FeatureBacklog.objects.exists():
                lag = time.perf_counter() - last_response
                break
            time.sleep(0.05)
        applied = sum(CustomerFeatures.objects.values_list("events_applied", flat=True))
        resend_seconds, resend_accepted, _ = _post_all(port, key, bodies[:20], args.threads)
    finally:
        for proc in (web, worker):
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in (web, worker):
            proc.wait(timeout=30)

    customer_pks = dict(Customer.objects.values_list("external_id", "pk"))
    copy_seconds = _copy_baseline(batches, customer_pks)
    n = sum(len(b) for b in batches)
    result = {
        "benchmark": "events_ingest",
        "events": n,
        "accepted": accepted,
        "http_errors": errors,
        "seconds": round(seconds, 2),
        "events_per_s": round(n / seconds),
        "target_events_per_s": 20_000,
        "features_lag_after_last_event_s": None if lag is None else round(lag, 2),
        "target_features_lag_s": 5,
        "features_events_applied": applied,
        "resent_batches_accepted": resend_accepted,
        "copy_seconds": round(copy_seconds, 2),
        "copy_events_per_s": round(n / copy_seconds),
        "ratio_endpoint_to_copy": round((n / seconds) / (n / copy_seconds), 3),
        "gunicorn_workers": args.workers,
        "client_threads": args.threads,
        "client_rate_limit": args.rate or None,
        "cpus": os.cpu_count(),
    }
    result["ok"] = (
        result["events_per_s"] >= 20_000
        and lag is not None
        and lag <= 5
        and applied == n
        and errors == 0
        and resend_accepted == 0
    )
    print(json.dumps(result))  # noqa: T201


if __name__ == "__main__":
    main()

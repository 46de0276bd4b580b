"""Benchmark: cluster 100,000 simulated customers by their behavioural features.

    .venv/bin/python benchmarks/segment_clusters.py [--customers 125000 --items 2000
        --days 30 --k-min 2 --k-max 8 | --k 5] [--groups categories,dayparts] [--keep]

The default 125,000 simulated customers give about 100,000 with events (the others signed
up but never came), which are the ones clustered.

Uses a scratch database (marketing_bench_clusters, dropped and migrated first; `--keep`
reuses a store already loaded there), loads a simulated store (marketing.simulation) and
computes its profile features, then runs one clustering run exactly as the Celery task does
(`cluster_run_execute`): features loaded in keyset chunks, k-means with k chosen by the
silhouette of a 5,000-customer sample, assignments stored with COPY.

Printed per phase: simulate + features (set-up, not clustering), then load, fit, store.
Alignment with the store's hidden truth, as adjusted Rand index between the clusters and:
the customer's top taste category (argmax of `truth.taste`), preferred hour group
(morning 8 / noon 12 / evening 20) and preferred channel. Prints a JSON line last.
"""

import argparse
import json
import time

import numpy as np
from _scratch import bench_env, database_reset, django_setup

DB = "marketing_bench_clusters"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=125_000)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--k-min", type=int, default=2)
    parser.add_argument("--k-max", type=int, default=8)
    parser.add_argument("--k", type=int, default=None)
    parser.add_argument(
        "--groups",
        default="value,categories,channels,dayparts",
        help="feature groups to cluster on, comma-separated",
    )
    parser.add_argument("--keep", action="store_true", help="reuse the store already loaded")
    return parser.parse_args()


def hour_group(hours: np.ndarray) -> np.ndarray:
    """The simulated preferred hour is 8, 12 or 20 plus noise: back to its mode."""
    modes = np.array([8, 12, 20])
    distance = np.abs(((hours[:, None] - modes[None, :]) + 12) % 24 - 12)
    return distance.argmin(axis=1)


def main() -> None:
    args = parse_args()
    # The run is executed here, not by a worker: the task it schedules goes nowhere.
    env = bench_env(DB, redis_db=4, CELERY_BROKER_URL="memory://")
    phases: dict[str, float] = {}
    if not args.keep:
        database_reset(DB, env)
    django_setup(env)

    from sklearn.metrics import adjusted_rand_score

    from marketing.models import Job
    from marketing.simulation.load import store_simulate
    from marketing.simulation.store import StoreConfig, generate_truth
    from profiles.models import ClusterAssignment, Customer
    from profiles.segments.clusters import cluster_run_create, cluster_run_execute
    from profiles.services import features_rebuild

    config = StoreConfig(customers=args.customers, items=args.items, days=args.days, seed=args.seed)
    if not args.keep:
        started = time.perf_counter()
        counts = store_simulate(config=config, reset=True)
        phases["simulate_seconds"] = round(time.perf_counter() - started, 2)
        started = time.perf_counter()
        features_rebuild(repair=True)
        phases["features_seconds"] = round(time.perf_counter() - started, 2)
    else:
        counts = {"customers": Customer.objects.count()}

    run = cluster_run_create(
        k_min=args.k_min, k_max=args.k_max, k=args.k, groups=args.groups.split(",")
    )
    started = time.perf_counter()
    run = cluster_run_execute(run_id=run.pk, job_id=run.job_id)
    clustering_seconds = round(time.perf_counter() - started, 2)
    job = Job.objects.get(pk=run.job_id)
    if run.k is None:
        raise SystemExit(f"clustering failed: {job.error}")
    for key in ("load_seconds", "fit_seconds", "store_seconds"):
        phases[key] = job.result[key]

    truth = generate_truth(config)
    rows = list(
        ClusterAssignment.objects.filter(run=run).values_list("customer__external_id", "cluster")
    )
    index = np.array([int(ext[1:]) - 1 for ext, _ in rows])
    labels = np.array([cluster for _, cluster in rows])
    alignment = {
        "taste": adjusted_rand_score(truth.taste[index].argmax(axis=1), labels),
        "hour": adjusted_rand_score(hour_group(truth.preferred_hour[index].astype(int)), labels),
        "channel": adjusted_rand_score(truth.preferred_channel[index], labels),
    }
    for cluster in run.clusters:
        print(f"cluster {cluster['index'] + 1}: {cluster['size']:>7,}  {cluster['description']}")  # noqa: T201
    print(  # noqa: T201
        json.dumps(
            {
                "customers_simulated": counts.get("customers"),
                "events": counts.get("events"),
                "customers_clustered": run.customers,
                "groups": run.params["groups"],
                "features": len(run.params["features"]),
                "k": run.k,
                "silhouette": run.silhouette,
                "silhouette_by_k": run.silhouette_by_k,
                **phases,
                "clustering_seconds": clustering_seconds,
                "adjusted_rand": {key: round(float(v), 4) for key, v in alignment.items()},
            }
        )
    )


if __name__ == "__main__":
    main()

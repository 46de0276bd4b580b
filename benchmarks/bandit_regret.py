"""Benchmark: cumulative regret of the bandit policies against uniform A/B allocation.

    .venv/bin/python benchmarks/bandit_regret.py [--rounds 100000 --batch 1000 --seeds 20]

Simulation only (no database, no Django): Bernoulli arms with known rates. Traffic is
reweighted in batches, as the product's Celery task does every 10 minutes: each batch of
`--batch` users is split over the arms by the weights in force (a multinomial draw), the arms'
conversions are drawn, and `experiments.bandits.allocate` computes the next weights from the
cumulative counts, with the product's rules (burn-in of 100 users per arm, 1% minimum share).

Regret is the expected (pseudo-)regret: sum over users of best rate - assigned arm's rate, i.e.
conversions lost against always showing the best arm. Averaged over `--seeds` seeds; uniform
A/B allocation (`fixed` with equal weights) is the baseline. The IPW column is the mean
absolute error of the Horvitz-Thompson estimate of the arm rates under Thompson sampling
(propensity = the batch's weight), next to the naive per-arm mean, to show that changing
weights do not bias it.
Prints a table, then JSON on its last line.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from experiments.bandits import (  # noqa: E402
    EPSILON_GREEDY,
    FIXED,
    THOMPSON,
    UCB1,
    AllocationRules,
    allocate,
)

CONFIGS = {
    "two_arms": [0.04, 0.05],
    "three_close": [0.10, 0.12, 0.11],
    "five_close": [0.050, 0.053, 0.056, 0.059, 0.062],
    "one_clearly_best": [0.03, 0.03, 0.03, 0.03, 0.08],
}
POLICIES = [FIXED, EPSILON_GREEDY, UCB1, THOMPSON]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--seeds", type=int, default=20)
    return parser.parse_args()


def simulate(policy: str, rates: np.ndarray, *, rounds: int, batch: int, seed: int) -> dict:
    """One run: cumulative regret and the IPW / naive estimates of the arm rates."""
    rng = np.random.default_rng([seed, len(rates), POLICIES.index(policy)])
    rules = AllocationRules()
    k = len(rates)
    n = np.zeros(k, dtype=np.int64)
    s = np.zeros(k, dtype=np.int64)
    ipw_total = np.zeros(k)
    regret = 0.0
    best = rates.max()
    for step, start in enumerate(range(0, rounds, batch)):
        size = min(batch, rounds - start)
        weights = allocate(policy, n, s, rules=rules, seed=seed * 1_000_003 + step)
        counts = rng.multinomial(size, weights)
        wins = rng.binomial(counts, rates)
        regret += float(counts @ (best - rates))
        ipw_total += wins / weights
        n += counts
        s += wins
    naive = np.divide(s, n, out=np.zeros(k), where=n > 0)
    return {"regret": regret, "ipw": ipw_total / rounds, "naive": naive}


def main() -> None:
    args = parse_args()
    started = time.perf_counter()
    results: dict[str, dict] = {}
    header = f"{'config':<18}" + "".join(f"{p:>16}" for p in POLICIES) + f"{'TS vs A/B':>12}"
    print(
        f"cumulative regret (conversions lost), {args.rounds:,} rounds, batches of "
        f"{args.batch:,}, mean over {args.seeds} seeds"
    )
    print(header)
    for name, arm_rates in CONFIGS.items():
        rates = np.asarray(arm_rates)
        row: dict[str, dict] = {}
        for policy in POLICIES:
            runs = [
                simulate(policy, rates, rounds=args.rounds, batch=args.batch, seed=seed)
                for seed in range(args.seeds)
            ]
            regrets = np.array([r["regret"] for r in runs])
            row[policy] = {
                "regret_mean": round(float(regrets.mean()), 1),
                "regret_sd": round(float(regrets.std(ddof=1)), 1),
            }
            if policy == THOMPSON:
                ipw = np.array([r["ipw"] for r in runs])
                naive = np.array([r["naive"] for r in runs])
                row[policy]["ipw_bias"] = np.round(ipw.mean(axis=0) - rates, 5).tolist()
                row[policy]["naive_bias"] = np.round(naive.mean(axis=0) - rates, 5).tolist()
        reduction = 1 - row[THOMPSON]["regret_mean"] / row[FIXED]["regret_mean"]
        results[name] = {"rates": arm_rates, "policies": row, "thompson_reduction": reduction}
        print(
            f"{name:<18}"
            + "".join(f"{row[p]['regret_mean']:>16,.1f}" for p in POLICIES)
            + f"{reduction:>12.1%}"
        )
    total = {p: sum(r["policies"][p]["regret_mean"] for r in results.values()) for p in POLICIES}
    overall = 1 - total[THOMPSON] / total[FIXED]
    minimum = min(r["thompson_reduction"] for r in results.values())
    print(f"{'total':<18}" + "".join(f"{total[p]:>16,.1f}" for p in POLICIES) + f"{overall:>12.1%}")
    print("Thompson IPW bias per arm (mean over seeds):")
    for name, r in results.items():
        th = r["policies"][THOMPSON]
        print(f"  {name:<16} ipw {th['ipw_bias']}  naive {th['naive_bias']}")
    elapsed = time.perf_counter() - started
    print(
        json.dumps(
            {
                "rounds": args.rounds,
                "batch": args.batch,
                "seeds": args.seeds,
                "configs": results,
                "total_regret": total,
                "thompson_reduction_total": round(overall, 4),
                "thompson_reduction_min": round(minimum, 4),
                "thompson_at_least_60pct_less": minimum >= 0.6,
                "seconds": round(elapsed, 1),
            }
        )
    )


if __name__ == "__main__":
    main()

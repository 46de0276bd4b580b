"""Benchmark: every attribution model over 1,000,000 synthetic paths (target: all < 60 s).

    .venv/bin/python benchmarks/attribution_models.py [--paths 1000000 --seed 42]
        [--data-dir ../shared/data]

No database, no Django: `experiments.attribution` on numpy arrays. Synthetic journeys have
10 channels (direct included), 1-10 touches each, gaps of about two days, and a conversion
probability that depends on which channels the journey saw (a logistic model with
per-channel effects, about 4% overall), so the models disagree in interesting ways; values are
log-normal around 50. Timings: building the paths from 5.5M touchpoint rows (split after
conversions, 30-day lookback), once from rows ordered by journey and time (as a query
returns them; the order is checked in one pass) and once from the same rows shuffled (a
full three-key sort), each model alone, and all eight models in one
`attribute_all` call (which shares the converting-path subset between models).

Then the shared public samples, when present: the touchpoint sample
(`mta-journeys-sample/attribution_data.csv`, 30-day lookback) and ChannelAttribution's
aggregated paths (`channelattribution-paths/Data.csv`, no timestamps, so no time decay); a
credit table for each. Prints tables, then JSON on its last line.
"""

import argparse
import dataclasses
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from experiments.attribution import (  # noqa: E402
    MODELS,
    attribute,
    attribute_all,
    format_table,
    paths_from_touchpoints,
    read_paths_file,
)

CHANNELS = (
    "direct",
    "email",
    "sms",
    "push",
    "paid_search",
    "organic_search",
    "social",
    "display",
    "affiliate",
    "video",
)
# How often each channel is the touch, and its effect on the log-odds of converting.
SHARE = np.array([0.14, 0.16, 0.05, 0.08, 0.15, 0.12, 0.12, 0.10, 0.03, 0.05])
EFFECT = np.array([0.3, 0.5, 0.2, 0.1, 0.8, 0.4, 0.0, -0.2, 0.6, 0.1])
BASE_LOG_ODDS = -4.8
SAMPLES = {
    "mta_journeys": "mta-journeys-sample/attribution_data.csv",
    "channelattribution_paths": "channelattribution-paths/Data.csv",
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--paths", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    return parser.parse_args()


def synthetic_rows(n_paths: int, seed: int) -> dict[str, np.ndarray]:
    """Touchpoint rows of `n_paths` journeys, conversion flag on the last row of converters."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 11, n_paths)
    n = int(lengths.sum())
    journey = np.repeat(np.arange(n_paths), lengths)
    channel = rng.choice(len(CHANNELS), size=n, p=SHARE)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    seen = np.bitwise_or.reduceat(np.left_shift(1, channel), starts)
    present = (seen[:, None] >> np.arange(len(CHANNELS))) & 1
    log_odds = BASE_LOG_ODDS + present @ EFFECT + 0.05 * lengths
    converts = rng.random(n_paths) < 1 / (1 + np.exp(-log_odds))
    gaps = rng.exponential(2 * 86_400.0, n)
    gaps[starts] = rng.uniform(0, 60 * 86_400.0, n_paths)
    timestamps = (
        1.7e9 + np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[starts] - gaps[starts], lengths)
    )
    last = np.zeros(n, dtype=bool)
    last[np.cumsum(lengths) - 1] = True
    conversion = last & converts[journey]
    value = np.where(conversion, rng.lognormal(np.log(50), 0.6, n), 0.0)
    return {
        "journey_ids": journey,
        "timestamps": timestamps,
        "channels": channel,
        "conversions": conversion,
        "values": value,
    }


def credit_table(results) -> dict[str, dict[str, float]]:
    return {r.model: {c: round(v, 2) for c, v in r.credit_by_channel().items()} for r in results}


def main() -> None:
    args = parse_args()
    started = time.perf_counter()
    rows = synthetic_rows(args.paths, args.seed)
    generate_s = time.perf_counter() - started

    started = time.perf_counter()
    paths = paths_from_touchpoints(**rows, channel_names=CHANNELS)
    build_s = time.perf_counter() - started
    shuffle = np.random.default_rng(args.seed).permutation(len(rows["channels"]))
    shuffled = {name: column[shuffle] for name, column in rows.items()}
    started = time.perf_counter()
    paths_from_touchpoints(**shuffled, channel_names=CHANNELS)
    build_shuffled_s = time.perf_counter() - started
    del shuffled
    converting = paths.converting
    print(
        f"{args.paths:,} journeys, {len(rows['channels']):,} touchpoints -> {paths.n_paths:,} "
        f"paths, {converting.n_paths:,} converting "
        f"({converting.n_paths / paths.n_paths:.1%}), {len(CHANNELS)} channels; "
        f"generated in {generate_s:.2f} s"
    )
    print(
        f"  building paths: {build_s:.2f} s from rows ordered by journey and time, "
        f"{build_shuffled_s:.2f} s from shuffled rows (full sort)"
    )

    per_model = {}
    for model in MODELS:
        fresh = dataclasses.replace(paths)  # no cached subsets from the previous model
        started = time.perf_counter()
        attribute(fresh, model=model)
        per_model[model] = round(time.perf_counter() - started, 3)
        print(f"  {model:<16} {per_model[model]:7.3f} s")

    fresh = dataclasses.replace(paths)
    started, cpu_started = time.perf_counter(), time.process_time()
    results, skipped = attribute_all(fresh)
    all_s, all_cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    print(
        f"  {'all models':<16} {all_s:7.3f} s wall, {all_cpu_s:.3f} s CPU "
        f"(+ {build_s:.2f} s building the paths)"
    )
    print(format_table(results))

    samples = {}
    for name, relative in SAMPLES.items():
        file = args.data_dir / relative
        if not file.exists():
            continue
        sample = read_paths_file(file)
        sample_results, sample_skipped = attribute_all(sample)
        print(f"\n{name}: {relative}")
        print(format_table(sample_results))
        samples[name] = {
            "paths": sample.n_paths,
            "conversions": float(sample.converting.conversions.sum()),
            "value": round(float(sample.converting.value.sum()), 2),
            "credit": credit_table(sample_results),
            "weights": {
                r.model: dict(zip(r.channels, np.round(r.channel_weights, 4).tolist(), strict=True))
                for r in sample_results
                if r.channel_weights is not None
            },
            "skipped": list(sample_skipped),
        }

    print(
        json.dumps(
            {
                "journeys": args.paths,
                "touchpoints": len(rows["channels"]),
                "paths": paths.n_paths,
                "converting_paths": converting.n_paths,
                "build_seconds": round(build_s, 3),
                "build_shuffled_seconds": round(build_shuffled_s, 3),
                "model_seconds": per_model,
                "all_models_seconds": round(all_s, 3),
                "all_models_cpu_seconds": round(all_cpu_s, 3),
                "load_average_1m": round(os.getloadavg()[0], 2),
                "all_models_with_build_seconds": round(all_s + build_s, 3),
                "all_models_with_shuffled_build_seconds": round(all_s + build_shuffled_s, 3),
                "target_seconds": 60,
                "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                "synthetic_credit": credit_table(results),
                "skipped": list(skipped),
                "samples": samples,
            }
        )
    )


if __name__ == "__main__":
    main()

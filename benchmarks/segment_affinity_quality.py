"""Benchmark: do affinity segments find the customers truly interested in a category?

    .venv/bin/python benchmarks/segment_affinity_quality.py [--customers 3000 --items 400
        --days 60 --categories electronics,books,pets --aggregate top_mean]

Runs in memory, without a database: the simulated store's events (marketing.simulation)
are turned into interactions exactly as training reads them from PostgreSQL, and the model
is fitted with the training code's own `_fit` (the hybrid the nightly job trains and serves).

Truth: a customer is *truly interested* in a category when it is among the two categories
with the highest share of their hidden taste (`truth.taste`), for every simulated customer,
including those without events (the model cannot score them; neither baseline can find them).

For each category, two segments of the same size N are compared:
- affinity: the N customers with the highest attribute affinity for `category = "<c>"`;
- past buyers: customers who purchased an item of the category, most purchases first, then
  the most recent purchase first.
N = the number of truly interested customers, cut to the number of past buyers when fewer
exist (both segments then have that size). Precision = interested members / N, recall =
interested members / all interested customers. Past buyers cannot make a larger segment, an
affinity segment can: `affinity_full` is the affinity segment with as many members as there
are interested customers. Scoring time covers every known customer.
Prints a JSON line last.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketing.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/marketing_bench")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/14")

TOP_TASTES = 2


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--items", type=int, default=400)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--categories", default="electronics,books,fashion,pets")
    parser.add_argument("--algorithm", default="hybrid")
    parser.add_argument("--aggregate", default="top_mean")
    parser.add_argument("--top-m", type=int, default=5)
    return parser.parse_args()


def interactions_from_store(truth, events):
    from marketing.simulation.events import EVENT_TYPES
    from recommender.algorithms.data import Interactions

    on_item = events.item >= 0
    item_ids = np.array(truth.item_external_ids, dtype=object)
    types = np.array(EVENT_TYPES, dtype=object)
    return Interactions.from_columns(
        user_ids=events.customer[on_item].astype(str),
        item_ids=item_ids[events.item[on_item]],
        event_types=types[events.type[on_item]],
        values=events.value[on_item],
        timestamps=events.occurred_at[on_item] / 1e6,
    )


def item_features(truth):
    from marketing.simulation.store import BRANDS, CATEGORIES
    from recommender.algorithms.data import ItemFeatures, item_text

    titles = truth.item_titles()
    texts = [
        item_text({"TITLE": t, "CATEGORY": CATEGORIES[c], "BRAND": BRANDS[b]})
        for t, c, b in zip(titles, truth.item_category, truth.item_brand, strict=True)
    ]
    return ItemFeatures(item_ids=np.array(truth.item_external_ids, dtype=object), texts=texts)


def past_buyers(events, truth, category: int) -> np.ndarray:
    """Customer indexes who bought the category, most purchases first, then most recent."""
    from marketing.simulation.events import PURCHASE

    bought = (events.type == PURCHASE) & (events.item >= 0)
    bought &= truth.item_category[np.maximum(events.item, 0)] == category
    customers = events.customer[bought]
    if not len(customers):
        return np.zeros(0, dtype=np.int64)
    counts = np.bincount(customers, minlength=truth.n_customers)
    last = np.zeros(truth.n_customers, dtype=np.int64)
    np.maximum.at(last, customers, events.occurred_at[bought])
    who = np.flatnonzero(counts)
    return who[np.lexsort((who, -last[who], -counts[who]))]


def precision_recall(members: np.ndarray, interested: np.ndarray) -> tuple[float, float]:
    hits = int(np.isin(members, interested).sum())
    precision = hits / len(members) if len(members) else 0.0
    return precision, hits / len(interested) if len(interested) else 0.0


def main() -> None:
    args = parse_args()
    import django

    django.setup()
    from django.conf import settings

    from marketing.simulation.events import EventChunk, generate_events
    from marketing.simulation.store import CATEGORIES, StoreConfig, generate_truth
    from recommender.algorithms.affinity import affinity_scores, select_top
    from recommender.algorithms.data import DEFAULT_TYPE_WEIGHTS, InteractionData
    from recommender.training import _fit

    started = time.perf_counter()
    config = StoreConfig(customers=args.customers, items=args.items, days=args.days, seed=args.seed)
    truth = generate_truth(config)
    events = EventChunk.concat(list(generate_events(truth)))
    interactions = interactions_from_store(truth, events)
    items = item_features(truth)
    data = InteractionData.from_interactions(
        interactions,
        extra_item_ids=items.item_ids,
        type_weights={**DEFAULT_TYPE_WEIGHTS, **settings.RECOMMENDER_EVENT_WEIGHTS},
        half_life_days=settings.RECOMMENDER_RECENCY_HALF_LIFE_DAYS or None,
    )
    simulated = time.perf_counter() - started
    started = time.perf_counter()
    model = _fit(args.algorithm, data, items)
    trained = time.perf_counter() - started

    known = np.array([int(u) for u in data.user_ids], dtype=np.int64)  # model index -> customer
    item_index = data.encode_items(truth.item_external_ids)  # truth item -> model item
    top_tastes = np.argsort(-truth.taste, axis=1)[:, :TOP_TASTES]
    per_category = {}
    scoring_seconds = []
    for name in [c.strip() for c in args.categories.split(",") if c.strip()]:
        category = CATEGORIES.index(name)
        interested = np.flatnonzero((top_tastes == category).any(axis=1))
        buyers = past_buyers(events, truth, category)
        n = min(len(interested), len(buyers))
        targets = item_index[(truth.item_category == category) & (item_index >= 0)]
        started = time.perf_counter()
        scores = affinity_scores(
            model, targets, n_users=data.n_users, aggregate=args.aggregate, top_m=args.top_m
        )
        selection = select_top(scores, top_n=max(len(interested), 1))
        scoring_seconds.append(time.perf_counter() - started)
        a_p, a_r = precision_recall(known[selection.users][:n], interested)
        f_p, f_r = precision_recall(known[selection.users], interested)
        b_p, b_r = precision_recall(buyers[:n], interested)
        per_category[name] = {
            "interested": len(interested),
            "past_buyers": len(buyers),
            "segment_size": n,
            "affinity": {"precision": round(a_p, 4), "recall": round(a_r, 4)},
            "past_buyers_segment": {"precision": round(b_p, 4), "recall": round(b_r, 4)},
            "affinity_full": {
                "size": len(selection.users),
                "precision": round(f_p, 4),
                "recall": round(f_r, 4),
            },
        }
        print(
            f"{name:12s} N={n:5d} interested={len(interested):5d} "  # noqa: T201
            f"affinity P={a_p:.3f} R={a_r:.3f}   past buyers P={b_p:.3f} R={b_r:.3f}   "
            f"affinity at {len(selection.users)} P={f_p:.3f} R={f_r:.3f}"
        )

    def mean(which: str, metric: str) -> float:
        return round(float(np.mean([c[which][metric] for c in per_category.values()])), 4)

    summary = {
        "benchmark": "segment_affinity_quality",
        "customers": truth.n_customers,
        "customers_known_to_model": data.n_users,
        "items": truth.n_items,
        "events": len(events),
        "algorithm": args.algorithm,
        "aggregate": args.aggregate,
        "top_m": args.top_m,
        "truth": f"category among the customer's top-{TOP_TASTES} hidden tastes",
        "categories": per_category,
        "mean": {
            "affinity": {"precision": mean("affinity", "precision"),
                         "recall": mean("affinity", "recall")},
            "past_buyers_segment": {"precision": mean("past_buyers_segment", "precision"),
                                    "recall": mean("past_buyers_segment", "recall")},
            "affinity_full": {"precision": mean("affinity_full", "precision"),
                              "recall": mean("affinity_full", "recall")},
        },
        "simulate_seconds": round(simulated, 2),
        "train_seconds": round(trained, 2),
        "scoring_seconds_per_category_all_customers": round(float(np.mean(scoring_seconds)), 4),
    }  # fmt: skip
    summary["affinity_beats_past_buyers"] = (
        summary["mean"]["affinity"]["recall"] > summary["mean"]["past_buyers_segment"]["recall"]
    )
    print(json.dumps(summary))  # noqa: T201


if __name__ == "__main__":
    main()

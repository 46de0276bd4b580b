"""Offline evaluation: train every model on one set of interactions, score on another.

This is the work behind `manage.py evaluate_recommender` and the benchmarks; no Django, no
database. Protocol:

- the catalog is every item of TRAIN (plus every item of ITEMS, if given, so the content
  model can recommend items nobody has interacted with yet);
- every user of TEST gets k items they did not interact with in TRAIN; users unknown to TRAIN
  (new customers) get the popularity ranking from every model, as production would;
- a user's relevant items are their TEST items minus their TRAIN items (those can never be
  recommended); test items outside the catalog still count in |relevant| (recall, MAP, NDCG
  ideal), as in Microsoft Recommenders;
- metrics are defined in metrics.py.
"""

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from recommender.algorithms.als import AlsRecommender
from recommender.algorithms.base import CatalogTooLarge, Recommender
from recommender.algorithms.bpr import BprRecommender
from recommender.algorithms.content import ContentRecommender
from recommender.algorithms.data import InteractionData, Interactions, ItemFeatures, time_split
from recommender.algorithms.ease import EaseRecommender
from recommender.algorithms.hybrid import HybridRecommender
from recommender.algorithms.itemknn import ItemKnnRecommender
from recommender.algorithms.metrics import (
    catalog_coverage,
    intra_list_diversity,
    novelty,
    ranking_metrics,
)
from recommender.algorithms.popularity import PopularityRecommender, TrendingRecommender

# Tuned on a validation split carved from the MovieLens 100K training data (75/25 inside the
# 75% train), never on the test; benchmarks/recommender_movielens.py reprints that grid.
EASE_L2 = 500.0
HYBRID_WEIGHTS = {"ease": 0.6, "als": 0.4}
HYBRID_WEIGHTS_LARGE_CATALOG = {"als": 0.8, "itemknn": 0.2}  # when EASE refuses the catalog
CONTENT_WEIGHT_IN_HYBRID = 0.1


def tuned_als(*, seed: int = 42) -> AlsRecommender:
    """ALS on binary interactions with few factors and more regularization than implicit's
    default: on MovieLens-size data the default (100 factors, reg 0.01) overfits."""
    return AlsRecommender(
        factors=16, regularization=0.1, alpha=5.0, iterations=15, binary=True, seed=seed
    )


@dataclass(frozen=True)
class ModelSpec:
    name: str
    build: Callable[[], Recommender]
    needs_items: bool = False


def default_specs(*, seed: int = 42) -> list[ModelSpec]:
    return [
        ModelSpec("popularity", PopularityRecommender),
        ModelSpec("trending", TrendingRecommender),
        ModelSpec("als_default", lambda: AlsRecommender(seed=seed)),
        ModelSpec("als", lambda: tuned_als(seed=seed)),
        ModelSpec("bpr", lambda: BprRecommender(seed=seed)),
        ModelSpec("itemknn", ItemKnnRecommender),
        ModelSpec("ease", lambda: EaseRecommender(l2=EASE_L2)),
        ModelSpec("content", ContentRecommender, needs_items=True),
    ]


@dataclass
class Evaluation:
    k: int
    n_users: int
    n_items: int
    n_train: int
    results: dict[str, dict[str, float]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def evaluate(
    *,
    train: Interactions,
    test: Interactions,
    items: ItemFeatures | None = None,
    k: int = 10,
    specs: list[ModelSpec] | None = None,
    hybrid: bool = True,
    hybrid_weights: Mapping[str, float] | None = None,
    type_weights: Mapping[str, float] | None = None,
    half_life_days: float | None = None,
    seed: int = 42,
) -> Evaluation:
    data = InteractionData.from_interactions(
        train,
        type_weights=type_weights,
        half_life_days=half_life_days,
        extra_item_ids=None if items is None else items.item_ids,
    )
    target = _Target.build(data, test)
    out = Evaluation(k=k, n_users=len(target.users), n_items=data.n_items, n_train=len(train))
    fallback = PopularityRecommender().fit(data)
    item_share = np.diff(data.binary().tocsc().indptr) / max(data.n_users, 1)
    vectors = ContentRecommender().fit(data, items).item_vectors if items is not None else None

    fitted: dict[str, tuple[Recommender, float]] = {}
    for spec in specs if specs is not None else default_specs(seed=seed):
        if spec.needs_items and items is None:
            out.skipped[spec.name] = "needs --items"
            continue
        model = spec.build()
        started = time.perf_counter()
        try:
            model.fit(data, items)
        except CatalogTooLarge as exc:
            out.skipped[spec.name] = str(exc)
            continue
        seconds = time.perf_counter() - started
        fitted[spec.name] = (model, seconds)
        out.results[spec.name] = _score(model, seconds, data, target, fallback, k, item_share)
        if vectors is not None:
            out.results[spec.name]["diversity"] = _diversity(model, target, data, k, vectors)

    if hybrid:
        weights = dict(HYBRID_WEIGHTS if "ease" in fitted else HYBRID_WEIGHTS_LARGE_CATALOG)
        if "content" in fitted:
            weights["content"] = CONTENT_WEIGHT_IN_HYBRID
        if hybrid_weights is not None:
            weights = {name: w for name, w in hybrid_weights.items() if w > 0}
        if all(name in fitted for name in weights):
            blend = HybridRecommender(
                [(fitted[name][0], w) for name, w in weights.items()], fitted=True
            ).fit(data, items)
            seconds = sum(fitted[name][1] for name in weights)
            out.results["hybrid"] = _score(blend, seconds, data, target, fallback, k, item_share)
            if vectors is not None:
                out.results["hybrid"]["diversity"] = _diversity(blend, target, data, k, vectors)
        else:
            out.skipped["hybrid"] = "needs " + ", ".join(sorted(set(weights) - set(fitted)))
    return out


@dataclass(frozen=True)
class _Target:
    users: np.ndarray  # test user ids with at least one relevant item
    user_index: np.ndarray  # index in the training data, -1 if unknown
    truth: sp.csr_matrix  # rows follow `users`, columns the catalog
    n_relevant: np.ndarray

    @classmethod
    def build(cls, data: InteractionData, test: Interactions) -> "_Target":
        pairs = np.unique(
            np.stack([test.user_ids.astype(str), test.item_ids.astype(str)], axis=1), axis=0
        )
        u = data.encode_users(pairs[:, 0])
        i = data.encode_items(pairs[:, 1])
        known = (u >= 0) & (i >= 0)
        seen = np.zeros(len(pairs), dtype=bool)
        if known.any():
            seen[known] = np.asarray(data.matrix[u[known], i[known]]).ravel() > 0
        pairs, u, i = pairs[~seen], u[~seen], i[~seen]
        users, rows = np.unique(pairs[:, 0], return_inverse=True)
        n_relevant = np.bincount(rows, minlength=len(users))
        in_catalog = i >= 0
        truth = sp.csr_matrix(
            (np.ones(in_catalog.sum()), (rows[in_catalog], i[in_catalog])),
            shape=(len(users), data.n_items),
        )
        return cls(
            users=users,
            user_index=data.encode_users(users),
            truth=truth,
            n_relevant=n_relevant,
        )


def _recommend_all(
    model: Recommender,
    data: InteractionData,
    target: _Target,
    fallback: Recommender,
    k: int,
) -> np.ndarray:
    recs = np.full((len(target.users), k), -1, dtype=np.int64)
    known = target.user_index >= 0
    if known.any():
        recs[known], _ = model.recommend(target.user_index[known], k, exclude=data.matrix)
    if (~known).any():
        top, _ = fallback.recommend(np.zeros(1, dtype=np.int64), k)
        recs[~known] = top[0]
    return recs


def _score(model, seconds, data, target, fallback, k, item_share) -> dict[str, float]:
    started = time.perf_counter()
    recs = _recommend_all(model, data, target, fallback, k)
    recommend_seconds = time.perf_counter() - started
    result = ranking_metrics(recs, target.truth, k, n_relevant=target.n_relevant)
    result["coverage"] = catalog_coverage(recs, data.n_items)
    result["novelty"] = novelty(recs, item_share)
    result["train_seconds"] = round(seconds, 3)
    result["recommend_seconds"] = round(recommend_seconds, 3)
    return result


def _diversity(model, target, data, k, vectors) -> float:
    """Intra-list diversity on TF-IDF item vectors, over at most 2,000 users (it loops)."""
    sample = target.user_index[target.user_index >= 0][:2000]
    recs, _ = model.recommend(sample, k, exclude=data.matrix)
    return intra_list_diversity(recs, vectors)


def format_table(evaluation: Evaluation) -> str:
    k = evaluation.k
    cols = [f"precision@{k}", f"recall@{k}", f"map@{k}", f"ndcg@{k}", "coverage", "novelty"]
    cols += ["diversity"] if any("diversity" in r for r in evaluation.results.values()) else []
    cols += ["train_seconds"]
    width = max([len(n) for n in evaluation.results] + [5])
    lines = [f"{'model':<{width}}  " + "  ".join(f"{c:>13}" for c in cols)]
    for name, result in evaluation.results.items():
        cells = "  ".join(f"{result.get(c, float('nan')):>13.4f}" for c in cols)
        lines.append(f"{name:<{width}}  {cells}")
    for name, reason in evaluation.skipped.items():
        lines.append(f"{name:<{width}}  skipped: {reason}")
    return "\n".join(lines)


def evaluate_time_holdout(
    interactions: Interactions,
    *,
    test_ratio: float = 0.2,
    k: int = 10,
    items: ItemFeatures | None = None,
    specs: list[ModelSpec] | None = None,
    type_weights: Mapping[str, float] | None = None,
    half_life_days: float | None = None,
    hybrid: bool = True,
) -> Evaluation:
    """What a production training reports: hold out each user's latest `test_ratio` of
    events (time_split), train on the rest, score on them."""
    train, test = time_split(interactions, test_ratio=test_ratio)
    return evaluate(
        train=train,
        test=test,
        items=items,
        k=k,
        specs=specs,
        type_weights=type_weights,
        half_life_days=half_life_days,
        hybrid=hybrid,
    )

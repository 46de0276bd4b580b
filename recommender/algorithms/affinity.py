"""Item and attribute affinity: which users are most likely to interact with an item, or
with any item of a set (Amazon Personalize's USER_SEGMENTATION recipes). No Django.

Every user is scored by the trained model in blocks of users, so memory stays at
block x n_items floats whatever the number of users:

- item affinity: the model's predicted score of the item for the user;
- attribute affinity: an aggregate of the predicted scores of the items matching an
  expression (see `AGGREGATES`).

Scores include items the user already interacted with: a past buyer of an item is a likely
buyer again, unlike in a recommendation list, where seen items are hidden. For the hybrid
that means its components are blended without masking seen items (the served blend masks
them before scaling, which would give them the lowest score).

Each user's scores are then standardised over the catalog (z-scores), so users are compared
by how much the item stands out for them rather than by how much they use the store: raw
ALS or EASE scores grow with a user's activity and ranking on them picks heavy users whatever
they like. On the simulated store (benchmarks/segment_affinity_quality.py) standardising
raised the precision of category segments from 0.69 to 0.82 with ALS, from 0.57 to 0.83 with
EASE and from 0.84 to 0.84 with the hybrid (already scaled per user).

A popularity model gives every user the same scores, so it cannot rank users: `can_score`
says so and the Django side then picks a personalized model.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from recommender.algorithms.base import Recommender, minmax_rows
from recommender.algorithms.hybrid import HybridRecommender
from recommender.algorithms.popularity import PopularityRecommender

BLOCK_SIZE = 2048
TOP_M = 5
AGGREGATES = ("top_mean", "max", "mean")
DEFAULT_AGGREGATE = "top_mean"

Progress = Callable[[int, int], None]


class CannotScoreError(ValueError):
    """The model scores every user the same (popularity): it cannot rank users."""


@dataclass(frozen=True)
class AffinitySelection:
    """Selected users best first, with their scores; `scored` users were ranked in all."""

    users: np.ndarray  # int64 user indices
    scores: np.ndarray  # float64
    scored: int


def can_score(model: Recommender) -> bool:
    """Whether the model's scores differ between users."""
    if isinstance(model, PopularityRecommender):  # TrendingRecommender is a subclass
        return False
    if isinstance(model, HybridRecommender):
        return any(can_score(component) for component, _ in model.components)
    return True


def user_scores(
    model: Recommender, user_indices: np.ndarray, *, standardize: bool = True
) -> np.ndarray:
    """Dense [len(users), n_items] scores, seen items included, each row standardised
    unless `standardize` is false (see the module docstring)."""
    users = np.asarray(user_indices, dtype=np.int64)
    if isinstance(model, HybridRecommender):
        scores = np.zeros((len(users), model.n_items), dtype=np.float32)
        for component, weight in model.components:
            s = np.asarray(component.score_batch(users), dtype=np.float32)
            scores += weight * minmax_rows(s)
    else:
        scores = np.asarray(model.score_batch(users), dtype=np.float32)
    if not standardize:
        return scores
    scores = np.where(np.isfinite(scores), scores, 0.0).astype(np.float32)
    mean = scores.mean(axis=1, keepdims=True)
    std = scores.std(axis=1, keepdims=True)
    return (scores - mean) / np.where(std > 0, std, 1.0)


def aggregate_scores(
    target_scores: np.ndarray, *, aggregate: str = DEFAULT_AGGREGATE, top_m: int = TOP_M
) -> np.ndarray:
    """One score per row from the scores of the target items [n_users, n_targets].

    top_mean: mean of each user's m best target items (the user is keen on some of them,
    not necessarily all; one lucky item does not decide, as it can with max); max: the best
    target item; mean: all target items alike (dominated by the many items nobody wants in a
    large category).
    """
    if aggregate not in AGGREGATES:
        raise ValueError(f"unknown aggregate {aggregate!r}; use one of {', '.join(AGGREGATES)}")
    n_targets = target_scores.shape[1]
    if n_targets == 0:
        raise ValueError("no target items")
    s = np.asarray(target_scores, dtype=np.float64)
    if aggregate == "max" or n_targets == 1:
        return s.max(axis=1)
    if aggregate == "mean":
        return s.mean(axis=1)
    m = max(1, min(top_m, n_targets))
    best = np.partition(s, n_targets - m, axis=1)[:, n_targets - m :]
    return best.mean(axis=1)


def affinity_scores(
    model: Recommender,
    target_items: np.ndarray,
    *,
    n_users: int,
    aggregate: str = DEFAULT_AGGREGATE,
    top_m: int = TOP_M,
    block_size: int = BLOCK_SIZE,
    progress: Progress | None = None,
) -> np.ndarray:
    """Affinity of every user 0..n_users-1 for the target items (one item: its score)."""
    if not can_score(model):
        raise CannotScoreError(f"a {model.name} model gives every user the same scores")
    targets = np.unique(np.asarray(target_items, dtype=np.int64))
    if len(targets) == 0:
        raise ValueError("no target items")
    if targets[0] < 0 or targets[-1] >= model.n_items:
        raise ValueError("target item index out of range")
    out = np.empty(n_users, dtype=np.float64)
    for lo in range(0, n_users, block_size):
        users = np.arange(lo, min(lo + block_size, n_users))
        block = user_scores(model, users)[:, targets]
        out[lo : lo + len(users)] = aggregate_scores(block, aggregate=aggregate, top_m=top_m)
        if progress is not None:
            progress(lo + len(users), n_users)
    return out


def select_top(
    scores: np.ndarray, *, top_n: int | None = None, top_percent: float | None = None
) -> AffinitySelection:
    """The `top_n` best users, or the best `top_percent` % of them (rounded up, at least one
    when there are users), best first; ties go to the lower index. Non-finite scores are
    never selected."""
    if (top_n is None) == (top_percent is None):
        raise ValueError("give exactly one of top_n and top_percent")
    scores = np.asarray(scores, dtype=np.float64)
    finite = np.flatnonzero(np.isfinite(scores))
    n = len(finite)
    if top_n is not None:
        if top_n < 1:
            raise ValueError("top_n must be at least 1")
        k = min(top_n, n)
    else:
        assert top_percent is not None  # noqa: S101  (checked above)
        if not 0 < top_percent <= 100:
            raise ValueError("top_percent must be in (0, 100]")
        k = min(n, int(np.ceil(n * top_percent / 100.0 - 1e-9))) if n else 0
    order = finite[np.lexsort((finite, -scores[finite]))][:k]
    return AffinitySelection(users=order.astype(np.int64), scores=scores[order], scored=n)

"""Popularity with time decay: the fallback every other recommender degrades to."""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from recommender.algorithms.base import Recommender
from recommender.algorithms.data import SECONDS_PER_DAY, InteractionData, ItemFeatures

# How much one event of each type says about liking an item.
EVENT_WEIGHTS = {
    "view": 1.0,
    "click": 1.0,
    "offer_click": 1.0,
    "add_to_cart": 3.0,
    "purchase": 5.0,
}


@dataclass(frozen=True)
class PopularityModel:
    item_ids: list[str]
    scores: list[float]

    def top(self, n: int, *, exclude: set[str] | None = None) -> list[tuple[str, float]]:
        exclude = exclude or set()
        out = []
        for item_id, score in zip(self.item_ids, self.scores, strict=True):
            if item_id in exclude:
                continue
            out.append((item_id, score))
            if len(out) == n:
                break
        return out


def popularity_fit(
    *,
    item_ids: Sequence[str],
    event_types: Sequence[str],
    ages_days: Sequence[float],
    counts: Sequence[int] | None = None,
    half_life_days: float = 14.0,
    max_items: int = 1000,
) -> PopularityModel:
    """Score items by Σ count × weight(type) × 2^(-age / half-life).

    The inputs are parallel columns, one row per event or per pre-aggregated
    (item, type, age) group; rows of unweighted types or without an item are ignored.
    """
    items = np.asarray(item_ids, dtype=object)
    weights = np.array([EVENT_WEIGHTS.get(t, 0.0) for t in event_types], dtype=np.float64)
    ages = np.asarray(ages_days, dtype=np.float64)
    n = np.ones(len(items)) if counts is None else np.asarray(counts, dtype=np.float64)
    contrib = n * weights * np.exp2(-np.maximum(ages, 0.0) / half_life_days)
    keep = (weights > 0) & (items != "")
    if not keep.any():
        return PopularityModel(item_ids=[], scores=[])
    codes, uniques = _factorize(items[keep])
    totals = np.bincount(codes, weights=contrib[keep])
    order = np.lexsort((uniques, -totals))[:max_items]
    return PopularityModel(
        item_ids=[str(uniques[i]) for i in order],
        scores=[round(float(totals[i]), 6) for i in order],
    )


def _factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    uniques, codes = np.unique(values.astype(str), return_inverse=True)
    return codes, uniques


class PopularityRecommender(Recommender):
    """Everyone gets the same ranking: items by how many users interacted with them, or, with
    `half_life_days`, by trending score Σ weight × 2^(-age / half-life) (age from the latest
    event in the data). The fallback for users without history."""

    name = "popularity"

    def __init__(self, *, half_life_days: float | None = None) -> None:
        self.half_life_days = half_life_days
        self.item_scores = np.zeros(0, dtype=np.float32)

    def fit(
        self, data: InteractionData, item_features: ItemFeatures | None = None
    ) -> "PopularityRecommender":
        self.n_items = data.n_items
        self.user_items = data.matrix
        if self.half_life_days is None:
            scores = np.diff(data.matrix.tocsc().indptr).astype(np.float64)
        else:
            age_days = np.maximum(data.now - data.timestamps, 0.0) / SECONDS_PER_DAY
            contrib = data.weights * np.exp2(-age_days / self.half_life_days)
            scores = np.bincount(data.cols, weights=contrib, minlength=data.n_items)
        self.item_scores = scores.astype(np.float32)
        return self

    def score_batch(self, user_indices: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.item_scores, (len(user_indices), self.n_items)).copy()

    def to_arrays(self) -> dict[str, np.ndarray]:
        hl = np.nan if self.half_life_days is None else self.half_life_days
        return {"item_scores": self.item_scores, "half_life_days": np.array(hl)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "PopularityRecommender":
        hl = float(arrays["half_life_days"])
        model = cls(half_life_days=None if np.isnan(hl) else hl)
        model.item_scores = np.asarray(arrays["item_scores"], dtype=np.float32)
        model.n_items = len(model.item_scores)
        return model


class TrendingRecommender(PopularityRecommender):
    name = "trending"

    def __init__(self, *, half_life_days: float | None = 14.0) -> None:
        super().__init__(half_life_days=half_life_days)

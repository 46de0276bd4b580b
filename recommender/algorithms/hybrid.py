"""A weighted blend of several recommenders' per-user normalised scores.

Each component's scores for a user are min-max scaled to [0, 1] over the items the user has
not interacted with (so one huge score on an already-seen item does not squash the rest),
then summed with the component weights. The default blend (EASE 0.8 + item-kNN 0.2 where EASE
fits; ALS 0.8 + item-kNN 0.2 above EASE's catalog limit; plus content 0.1 when item features
exist) was chosen on a validation split carved from the MovieLens 100K training data — see
benchmarks/recommender_movielens.py, which prints the validation grid.
"""

import numpy as np

from recommender.algorithms.als import AlsRecommender
from recommender.algorithms.base import (
    Recommender,
    csr_from_arrays,
    csr_to_arrays,
    minmax_rows,
)
from recommender.algorithms.bpr import BprRecommender
from recommender.algorithms.content import ContentRecommender
from recommender.algorithms.data import InteractionData, ItemFeatures
from recommender.algorithms.ease import EaseRecommender
from recommender.algorithms.itemknn import ItemKnnRecommender
from recommender.algorithms.popularity import PopularityRecommender, TrendingRecommender

MODEL_CLASSES: dict[str, type[Recommender]] = {
    cls.name: cls
    for cls in (
        AlsRecommender,
        BprRecommender,
        ContentRecommender,
        EaseRecommender,
        ItemKnnRecommender,
        PopularityRecommender,
        TrendingRecommender,
    )
}


class HybridRecommender(Recommender):
    name = "hybrid"

    def __init__(
        self,
        components: list[tuple[Recommender, float]],
        *,
        fitted: bool = False,
    ) -> None:
        if not components:
            raise ValueError("a hybrid needs at least one component")
        self.components = components
        self.fitted = fitted
        if fitted:
            self.n_items = components[0][0].n_items
            self.user_items = components[0][0].user_items

    def fit(
        self, data: InteractionData, item_features: ItemFeatures | None = None
    ) -> "HybridRecommender":
        if not self.fitted:
            for model, _ in self.components:
                model.fit(data, item_features)
        self.n_items = data.n_items
        self.user_items = data.matrix
        self.fitted = True
        return self

    def score_batch(self, user_indices: np.ndarray) -> np.ndarray:
        seen = self.user_rows(user_indices).tocoo()
        total = np.zeros((len(user_indices), self.n_items), dtype=np.float32)
        for model, weight in self.components:
            s = np.asarray(model.score_batch(user_indices), dtype=np.float32)
            s[seen.row, seen.col] = -np.inf
            total += weight * minmax_rows(s)
        return total

    def to_arrays(self) -> dict[str, np.ndarray]:
        assert self.user_items is not None  # noqa: S101
        out: dict[str, np.ndarray] = {
            "component_names": np.array([m.name for m, _ in self.components]),
            "component_weights": np.array([w for _, w in self.components], dtype=np.float64),
            **csr_to_arrays("user_items", self.user_items),
        }
        for i, (model, _) in enumerate(self.components):
            out.update({f"c{i}__{key}": value for key, value in model.to_arrays().items()})
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "HybridRecommender":
        components: list[tuple[Recommender, float]] = []
        for i, (name, weight) in enumerate(
            zip(arrays["component_names"], arrays["component_weights"], strict=True)
        ):
            prefix = f"c{i}__"
            sub = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
            components.append((MODEL_CLASSES[str(name)].from_arrays(sub), float(weight)))
        model = cls(components, fitted=True)
        model.user_items = csr_from_arrays("user_items", arrays)
        model.n_items = model.user_items.shape[1]
        return model


def model_from_arrays(name: str, arrays: dict[str, np.ndarray]) -> Recommender:
    """Rebuild any model from `to_arrays` output, given its class `name`."""
    if name == HybridRecommender.name:
        return HybridRecommender.from_arrays(arrays)
    return MODEL_CLASSES[name].from_arrays(arrays)

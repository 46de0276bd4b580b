"""Implicit-feedback matrix factorization with `implicit`'s ALS (Hu, Koren & Volinsky 2008).

The weights in `data.matrix` are the confidences r_ui; implicit uses c_ui = 1 + alpha * r_ui.
With `binary=True` every interaction counts 1.
`AlsRecommender()` with no arguments is implicit's default (factors 100, regularization 0.01,
alpha 1, 15 iterations), the baseline the tuned models are measured against.
"""

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares

from recommender.algorithms._implicit import default_threads, single_threaded_blas
from recommender.algorithms.base import Recommender, top_k
from recommender.algorithms.data import InteractionData, ItemFeatures


class FactorModel(Recommender):
    """Scores are user_factors @ item_factors.T."""

    user_factors = np.zeros((0, 0), dtype=np.float32)
    item_factors = np.zeros((0, 0), dtype=np.float32)

    def score_batch(self, user_indices: np.ndarray) -> np.ndarray:
        return self.user_factors[user_indices] @ self.item_factors.T

    def similar_items(self, item_indices: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        v = self.item_factors
        norms = np.linalg.norm(v, axis=1)
        norms[norms == 0] = 1.0
        unit = v / norms[:, None]
        sims = unit[np.asarray(item_indices)] @ unit.T
        sims[np.arange(len(sims)), np.asarray(item_indices)] = -np.inf
        return top_k(sims, min(k, self.n_items - 1))

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"user_factors": self.user_factors, "item_factors": self.item_factors}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "FactorModel":
        model = cls()
        model.user_factors = np.asarray(arrays["user_factors"], dtype=np.float32)
        model.item_factors = np.asarray(arrays["item_factors"], dtype=np.float32)
        model.n_items = len(model.item_factors)
        return model

    def _set_factors(self, fitted, data: InteractionData) -> None:
        self.user_factors = np.ascontiguousarray(fitted.user_factors, dtype=np.float32)
        self.item_factors = np.ascontiguousarray(fitted.item_factors, dtype=np.float32)
        self.n_items = data.n_items
        self.user_items = data.matrix


class AlsRecommender(FactorModel):
    name = "als"

    def __init__(
        self,
        *,
        factors: int = 100,
        regularization: float = 0.01,
        alpha: float = 1.0,
        iterations: int = 15,
        binary: bool = False,
        seed: int = 42,
        num_threads: int | None = None,
    ) -> None:
        self.params = {
            "factors": factors,
            "regularization": regularization,
            "alpha": alpha,
            "iterations": iterations,
        }
        self.binary = binary
        self.seed = seed
        self.num_threads = default_threads() if num_threads is None else num_threads

    def fit(
        self, data: InteractionData, item_features: ItemFeatures | None = None
    ) -> "AlsRecommender":
        with single_threaded_blas():
            model = AlternatingLeastSquares(
                **self.params, random_state=self.seed, num_threads=self.num_threads
            )
            matrix = data.binary() if self.binary else data.matrix
            model.fit(matrix.astype(np.float32), show_progress=False)
        self._set_factors(model, data)
        return self

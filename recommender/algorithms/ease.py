"""EASE^R (Steck 2019, "Embarrassingly Shallow Autoencoders for Sparse Data").

Closed form: P = (XᵀX + λI)⁻¹, B = I - P·diag(1/diag(P)) (so diag(B) = 0), scores = X_u B.
It is a dense items x items model: memory n_items² floats and an O(n_items³) inverse, so it
refuses catalogs above `max_items` (default 10,000: 800 MB and ~20 s on 2 cores) by raising
CatalogTooLarge; callers fall back to ALS / item-kNN for such catalogs. On small and medium
catalogs it is the most accurate model here (see benchmarks/recommender_movielens.py).
"""

import numpy as np
from scipy.linalg import lapack

from recommender.algorithms.base import (
    CatalogTooLarge,
    Recommender,
    csr_from_arrays,
    csr_to_arrays,
    top_k,
)
from recommender.algorithms.data import InteractionData, ItemFeatures


class EaseRecommender(Recommender):
    name = "ease"

    def __init__(
        self, *, l2: float = 500.0, use_weights: bool = False, max_items: int = 10_000
    ) -> None:
        self.l2 = l2
        self.use_weights = use_weights
        self.max_items = max_items
        self.weights = np.zeros((0, 0), dtype=np.float32)

    def fit(
        self, data: InteractionData, item_features: ItemFeatures | None = None
    ) -> "EaseRecommender":
        if data.n_items > self.max_items:
            raise CatalogTooLarge(
                f"EASE needs a dense {data.n_items}² matrix; limit is {self.max_items} items"
            )
        x = data.matrix if self.use_weights else data.binary()
        gram = (x.T @ x).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.l2
        chol, info = lapack.dpotrf(gram, lower=False, overwrite_a=True)
        if info != 0:
            raise np.linalg.LinAlgError(f"Cholesky failed ({info})")
        p, info = lapack.dpotri(chol, lower=False, overwrite_c=True)
        if info != 0:
            raise np.linalg.LinAlgError(f"inverse failed ({info})")
        p = np.triu(p) + np.triu(p, 1).T
        b = p / -np.diag(p)[None, :]
        b[np.diag_indices_from(b)] = 0.0
        self.weights = b.astype(np.float32)
        self.n_items = data.n_items
        self.user_items = x.astype(np.float32)
        return self

    def score_batch(self, user_indices: np.ndarray) -> np.ndarray:
        return np.asarray(self.user_rows(user_indices) @ self.weights)

    def similar_items(self, item_indices: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.weights[np.asarray(item_indices)].copy()
        rows[np.arange(len(rows)), np.asarray(item_indices)] = -np.inf
        return top_k(rows, min(k, self.n_items - 1))

    def to_arrays(self) -> dict[str, np.ndarray]:
        assert self.user_items is not None  # noqa: S101
        return {
            "weights": self.weights,
            "l2": np.array(self.l2),
            **csr_to_arrays("user_items", self.user_items),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "EaseRecommender":
        model = cls(l2=float(arrays["l2"]))
        model.weights = np.asarray(arrays["weights"], dtype=np.float32)
        model.user_items = csr_from_arrays("user_items", arrays)
        model.n_items = len(model.weights)
        return model

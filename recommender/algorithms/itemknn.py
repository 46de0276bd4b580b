"""Item-to-item collaborative filtering: cosine similarity of co-occurrence, top-N neighbours.

sim(i, j) = |U_i ∩ U_j| / (|U_i| |U_j|)^0.5 over binary interactions; each item keeps its
`neighbours` (default 20) most similar items, so the model is a sparse items x items matrix S
and a user's scores are their (weighted) history times S. `similar_items` is "customers who
liked this also liked".
"""

import numpy as np
import scipy.sparse as sp

from recommender.algorithms.base import (
    Recommender,
    csr_from_arrays,
    csr_to_arrays,
    top_k,
    top_k_sparse_rows,
)
from recommender.algorithms.data import InteractionData, ItemFeatures

MAX_DENSE_CELLS = 20_000_000  # rows per block x n_items when pruning to top-N


class ItemKnnRecommender(Recommender):
    name = "itemknn"

    def __init__(self, *, neighbours: int = 20, use_weights: bool = False) -> None:
        self.neighbours = neighbours
        self.use_weights = use_weights
        self.similarity = sp.csr_matrix((0, 0), dtype=np.float32)

    def fit(
        self, data: InteractionData, item_features: ItemFeatures | None = None
    ) -> "ItemKnnRecommender":
        x = data.binary().astype(np.float32)
        counts = np.asarray(x.sum(axis=0)).ravel()
        co = (x.T @ x).tocsr()
        inv = 1.0 / np.sqrt(np.maximum(counts, 1.0))
        cos = (sp.diags(inv) @ co @ sp.diags(inv)).tocsr()
        cos.setdiag(0.0)
        cos.eliminate_zeros()
        self.similarity = prune_rows(cos, self.neighbours)
        self.n_items = data.n_items
        self.user_items = data.matrix if self.use_weights else x
        return self

    def score_batch(self, user_indices: np.ndarray) -> np.ndarray:
        return (self.user_rows(user_indices) @ self.similarity).toarray()

    def similar_items(self, item_indices: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.similarity[np.asarray(item_indices)].toarray()
        idx, vals = top_k(rows, min(k, self.n_items))
        return np.where(vals > 0, idx, -1), vals

    def to_arrays(self) -> dict[str, np.ndarray]:
        assert self.user_items is not None  # noqa: S101
        return {
            **csr_to_arrays("similarity", self.similarity),
            **csr_to_arrays("user_items", self.user_items),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "ItemKnnRecommender":
        model = cls()
        model.similarity = csr_from_arrays("similarity", arrays)
        model.user_items = csr_from_arrays("user_items", arrays)
        model.n_items = model.similarity.shape[0]
        return model


def prune_rows(matrix: sp.csr_matrix, n: int) -> sp.csr_matrix:
    """Keep the n largest positive entries of every row."""
    n_rows, n_cols = matrix.shape
    step = max(1, MAX_DENSE_CELLS // max(n_cols, 1))
    blocks = [
        top_k_sparse_rows(matrix[lo : lo + step].toarray(), n) for lo in range(0, n_rows, step)
    ]
    if not blocks:
        return sp.csr_matrix(matrix.shape, dtype=np.float32)
    return sp.vstack(blocks).tocsr().astype(np.float32)


def similar_for_items(x: sp.csr_matrix, items: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The same cosine as `ItemKnnRecommender.fit`, computed only for the rows of `items`:
    what an incremental refresh needs when new events touched a few items. `x` is the
    binary users x items matrix; returns top-k indexes (-1 where no neighbour) and scores."""
    x = x.astype(np.float32).tocsc()
    counts = np.asarray(x.sum(axis=0)).ravel()
    inv = 1.0 / np.sqrt(np.maximum(counts, 1.0))
    items = np.asarray(items, dtype=np.int64)
    co = (x[:, items].T @ x).tocsr()
    cos = (sp.diags(inv[items]) @ co @ sp.diags(inv)).toarray()
    cos[np.arange(len(items)), items] = 0.0
    idx, vals = top_k(cos, min(k, x.shape[1]))
    return np.where(vals > 0, idx, -1), vals

"""The one interface every recommender implements, and the shared top-k machinery.

A model scores items for a batch of users (`score_batch` → dense [n, n_items]); `recommend`
turns that into top-k in batches, masking excluded items. `to_arrays` / `from_arrays` give a
flat dict of numpy arrays (np.savez-friendly) so the Django side can store and serve a model.
"""

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from recommender.algorithms.data import InteractionData, ItemFeatures

BATCH_SIZE = 2048


class CatalogTooLarge(ValueError):
    """The model cannot handle this many items (e.g. EASE's dense item x item inverse)."""


class Recommender(ABC):
    name: ClassVar[str] = "base"
    n_items: int = 0
    user_items: sp.csr_matrix | None = None

    @abstractmethod
    def fit(
        self, data: InteractionData, item_features: ItemFeatures | None = None
    ) -> "Recommender":
        """Learn from `data.matrix` (users x items weights); returns self."""

    @abstractmethod
    def score_batch(self, user_indices: np.ndarray) -> np.ndarray:
        """Dense float scores [len(user_indices), n_items]; higher is better."""

    def recommend(
        self,
        user_indices: np.ndarray,
        k: int,
        exclude: sp.csr_matrix | None = None,
        *,
        batch_size: int = BATCH_SIZE,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item indexes and scores per user, best first. Items with a nonzero in the
        user's row of `exclude` are never returned; slots that cannot be filled get -1 / -inf."""
        user_indices = np.asarray(user_indices, dtype=np.int64)
        n = len(user_indices)
        k_eff = min(k, self.n_items)
        items = np.full((n, k), -1, dtype=np.int64)
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        for lo in range(0, n, batch_size):
            batch = user_indices[lo : lo + batch_size]
            s = np.asarray(self.score_batch(batch), dtype=np.float32)
            if exclude is not None:
                mask_rows(s, exclude[batch])
            idx, top = top_k(s, k_eff)
            items[lo : lo + len(batch), :k_eff] = np.where(np.isfinite(top), idx, -1)
            scores[lo : lo + len(batch), :k_eff] = top
        return items, scores

    def similar_items(self, item_indices: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError(f"{self.name} has no item-to-item similarity")

    @abstractmethod
    def to_arrays(self) -> dict[str, np.ndarray]:
        """Everything needed to serve, as numpy arrays."""

    @classmethod
    @abstractmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "Recommender":
        """Inverse of `to_arrays`."""

    def user_rows(self, user_indices: np.ndarray) -> sp.csr_matrix:
        if self.user_items is None:
            raise RuntimeError(f"{self.name} is not fitted")
        return self.user_items[user_indices]


def mask_rows(scores: np.ndarray, exclude_rows: sp.csr_matrix) -> None:
    """Set scores[i, j] = -inf wherever exclude_rows[i, j] is nonzero (in place)."""
    coo = exclude_rows.tocoo()
    scores[coo.row, coo.col] = -np.inf


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the k best columns sorted best first; ties go to the lower index."""
    n, m = scores.shape
    if k <= 0 or m == 0:
        return np.zeros((n, 0), dtype=np.int64), np.zeros((n, 0), dtype=scores.dtype)
    if k < m:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.tile(np.arange(m), (n, 1))
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -vals), axis=1)
    idx = np.take_along_axis(part, order, axis=1)
    return idx, np.take_along_axis(vals, order, axis=1)


def top_k_sparse_rows(matrix: np.ndarray, k: int) -> sp.csr_matrix:
    """Keep the k largest positive entries of each row of a dense matrix, as CSR."""
    idx, vals = top_k(matrix, min(k, matrix.shape[1]))
    rows = np.repeat(np.arange(matrix.shape[0]), idx.shape[1])
    keep = vals.ravel() > 0
    return sp.csr_matrix((vals.ravel()[keep], (rows[keep], idx.ravel()[keep])), shape=matrix.shape)


def csr_to_arrays(prefix: str, m: sp.csr_matrix) -> dict[str, np.ndarray]:
    m = sp.csr_matrix(m)
    return {
        f"{prefix}_data": m.data,
        f"{prefix}_indices": m.indices,
        f"{prefix}_indptr": m.indptr,
        f"{prefix}_shape": np.array(m.shape, dtype=np.int64),
    }


def csr_from_arrays(prefix: str, arrays: dict[str, Any]) -> sp.csr_matrix:
    shape = tuple(int(x) for x in arrays[f"{prefix}_shape"])
    return sp.csr_matrix(
        (arrays[f"{prefix}_data"], arrays[f"{prefix}_indices"], arrays[f"{prefix}_indptr"]),
        shape=shape,
    )


def minmax_rows(scores: np.ndarray) -> np.ndarray:
    """Scale each row to [0, 1] over its finite entries (constant rows become 0)."""
    finite = np.isfinite(scores)
    lo = np.where(finite, scores, np.inf).min(axis=1, keepdims=True)
    hi = np.where(finite, scores, -np.inf).max(axis=1, keepdims=True)
    span = np.where(hi > lo, hi - lo, 1.0)
    out = (scores - lo) / span
    out[~finite] = 0.0
    return out

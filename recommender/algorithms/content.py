"""Content-based recommendations from item text and attributes (scikit-learn TF-IDF).

Each item becomes an L2-normalised TF-IDF vector of its title, category, brand, genres and
other attributes; a user's profile is the weighted mean of the vectors of the items they
interacted with, and items are scored by cosine similarity to it. Items with no interactions
at all (new items) score like any other, which is what the collaborative models cannot do.
"""

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from recommender.algorithms.base import (
    Recommender,
    csr_from_arrays,
    csr_to_arrays,
    top_k,
)
from recommender.algorithms.data import InteractionData, ItemFeatures


class ContentRecommender(Recommender):
    name = "content"

    def __init__(self, *, max_features: int = 50_000) -> None:
        self.max_features = max_features
        self.item_vectors = sp.csr_matrix((0, 0), dtype=np.float32)

    def fit(
        self, data: InteractionData, item_features: ItemFeatures | None = None
    ) -> "ContentRecommender":
        if item_features is None:
            raise ValueError("the content model needs item features (an items table)")
        texts = dict(zip(item_features.item_ids.astype(str), item_features.texts, strict=True))
        docs = [texts.get(str(item), "") for item in data.item_ids]
        vectorizer = TfidfVectorizer(
            max_features=self.max_features, sublinear_tf=True, dtype=np.float32
        )
        try:
            vectors = vectorizer.fit_transform(docs)
        except ValueError:  # every document empty
            vectors = sp.csr_matrix((len(docs), 1), dtype=np.float32)
        self.item_vectors = normalize(vectors).astype(np.float32).tocsr()
        self.n_items = data.n_items
        self.user_items = data.matrix
        return self

    def score_batch(self, user_indices: np.ndarray) -> np.ndarray:
        rows = normalize(self.user_rows(user_indices), norm="l1")
        profiles = rows @ self.item_vectors
        return (profiles @ self.item_vectors.T).toarray()

    def similar_items(self, item_indices: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        idx = np.asarray(item_indices)
        sims = (self.item_vectors[idx] @ self.item_vectors.T).toarray()
        sims[np.arange(len(idx)), idx] = -np.inf
        return top_k(sims, min(k, self.n_items - 1))

    def to_arrays(self) -> dict[str, np.ndarray]:
        assert self.user_items is not None  # noqa: S101
        return {
            **csr_to_arrays("item_vectors", self.item_vectors),
            **csr_to_arrays("user_items", self.user_items),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "ContentRecommender":
        model = cls()
        model.item_vectors = csr_from_arrays("item_vectors", arrays)
        model.user_items = csr_from_arrays("user_items", arrays)
        model.n_items = model.item_vectors.shape[0]
        return model

"""Bayesian Personalized Ranking (Rendle et al. 2009) via `implicit`.

implicit's BPR treats every nonzero as a positive (weights are ignored) and samples one
negative per positive per epoch. With num_threads > 1 it is Hogwild SGD and so not bit-for-bit
reproducible; use num_threads=1 for that.
"""

import numpy as np
from implicit.cpu.bpr import BayesianPersonalizedRanking

from recommender.algorithms._implicit import default_threads, single_threaded_blas
from recommender.algorithms.als import FactorModel
from recommender.algorithms.data import InteractionData, ItemFeatures


class BprRecommender(FactorModel):
    name = "bpr"

    def __init__(
        self,
        *,
        factors: int = 100,
        learning_rate: float = 0.01,
        regularization: float = 0.01,
        iterations: int = 100,
        seed: int = 42,
        num_threads: int | None = None,
    ) -> None:
        self.params = {
            "factors": factors,
            "learning_rate": learning_rate,
            "regularization": regularization,
            "iterations": iterations,
        }
        self.seed = seed
        self.num_threads = default_threads() if num_threads is None else num_threads

    def fit(
        self, data: InteractionData, item_features: ItemFeatures | None = None
    ) -> "BprRecommender":
        with single_threaded_blas():
            model = BayesianPersonalizedRanking(
                **self.params, random_state=self.seed, num_threads=self.num_threads
            )
            model.fit(data.binary().astype(np.float32), show_progress=False)
        self._set_factors(model, data)
        return self

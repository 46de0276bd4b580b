"""Contextual-bandit policies over hashed action-dependent features (one shared model).

Three learners, all linear in the features of `features.Featurizer`:

- `logistic`: online logistic regression, AdaGrad steps (per-coordinate learning rates, as
  VW's default), epsilon-greedy on the predicted click probability.
- `linucb`: ridge regression with the UCB bonus alpha * sqrt(x' A^-1 x). A full A^-1 over
  2^14 hashed dimensions is 2 GiB and O(d^2) per update, so A is kept diagonal: the bonus
  uses diag(A)^-1 and the weights take the recursive-least-squares step
  theta += diag(A)^-1 x (r - theta.x) / (1 + x' diag(A)^-1 x), i.e. Sherman-Morrison with
  the diagonal approximation (the denominator keeps the step stable with ~100 active
  features).
- `thompson`: the same diagonal posterior, N(theta.x_k, noise^2 x_k' diag(A)^-1 x_k) per
  candidate; the top action is drawn by probability matching (below).

Probability semantics (what `Ranking.probabilities` means, and what the log must keep for
IPS / doubly robust evaluation): every policy first computes a distribution p over the K
candidates for the *top slot*, draws the top action from it, and orders the remaining
candidates by score. `probabilities[i]` is p of the candidate at position i, i.e. the
probability that this candidate would have been put first for this request; the chosen
action's propensity is `probabilities[0]`. Only the top slot is explored and rewarded
(as Personalizer's reward for the first action).

- epsilon-greedy: p = (1 - eps) on the greedy candidate + eps / K on each (so the greedy one
  has 1 - eps + eps / K); ties of the greedy score share the 1 - eps equally.
- linucb: the same with the UCB score as the greedy score (eps may be 0, but then the log
  has propensity 1 and cannot evaluate other policies).
- thompson: p_ts = share of `draws` posterior samples in which the candidate is best; the
  top action is drawn from eps / K + (1 - eps) p_ts itself, so the logged probability is
  exactly the one the action was drawn with (a Monte Carlo estimate of the ideal one).

State is a few numpy arrays of length 2^bits plus the config; `to_bytes()` /
`policy_from_bytes()` round-trip it as .npz for Redis or PostgreSQL, with an update count
that callers can use as the model version.
"""

import io
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from recommender.contextual.features import Action, FeatureBatch, FeatureSpec, Featurizer

LOGISTIC = "logistic"
LINUCB = "linucb"
THOMPSON = "thompson"
KINDS = (LOGISTIC, LINUCB, THOMPSON)
FORMAT_VERSION = 1


@dataclass(frozen=True)
class PolicyConfig:
    """Settings of one policy; also the unit that offline evaluation compares."""

    kind: str = LOGISTIC
    epsilon: float = 0.2  # exploration share of the top slot (Personalizer's default 20%)
    # logistic: AdaGrad base rate; small because ~200 features are active per candidate
    # (offer_bandit_quality: 0.005 beat 0.01, 0.02 and 0.1 on the simulated storefront)
    learning_rate: float = 0.005
    l2: float = 0.0  # logistic: weight decay per update on the touched coordinates
    alpha: float = 0.02  # linucb: width of the confidence bonus
    ridge: float = 1.0  # linucb / thompson: prior precision (diag(A) starts here)
    noise: float = 0.1  # thompson: posterior scale
    draws: int = 64  # thompson: Monte Carlo samples for the top-slot probabilities
    features: FeatureSpec = field(default_factory=FeatureSpec)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}")
        if not 0.0 <= self.epsilon <= 1.0:
            raise ValueError("epsilon must be between 0 and 1")
        if self.learning_rate <= 0 or self.ridge <= 0 or self.draws < 1:
            raise ValueError("learning_rate and ridge must be positive, draws at least 1")
        if self.alpha < 0 or self.noise < 0 or self.l2 < 0:
            raise ValueError("alpha, noise and l2 must not be negative")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["features"] = self.features.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PolicyConfig":
        values = dict(data)
        values["features"] = FeatureSpec.from_dict(values["features"])
        return cls(**values)

    def with_(self, **changes: Any) -> "PolicyConfig":
        return replace(self, **changes)


@dataclass(frozen=True)
class Ranking:
    """Candidate indexes best first; `order[0]` is the action shown (and rewarded)."""

    order: tuple[int, ...]
    probabilities: tuple[float, ...]  # per position: P(that candidate is put first)
    scores: tuple[float, ...]  # per position: the policy's score (mean or UCB)
    greedy: int  # the candidate the policy would pick without exploration

    @property
    def chosen(self) -> int:
        return self.order[0]

    @property
    def chosen_probability(self) -> float:
        return self.probabilities[0]

    def top(self, k: int) -> list[tuple[int, float]]:
        return list(zip(self.order[:k], self.probabilities[:k], strict=True))


def greedy_distribution(scores: np.ndarray, epsilon: float) -> np.ndarray:
    """eps / K everywhere plus 1 - eps on the best score (shared among ties)."""
    best = scores >= scores.max() - 1e-12
    return epsilon / len(scores) + (1.0 - epsilon) * best / best.sum()


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -35.0, 35.0)))


class Policy:
    """Common ranking, serialization and featurizing; subclasses define the model."""

    kind: ClassVar[str]
    array_names: ClassVar[tuple[str, ...]]

    def __init__(self, config: PolicyConfig, *, seed: int | None = None) -> None:
        if config.kind != self.kind:
            raise ValueError(f"{type(self).__name__} needs kind={self.kind!r}")
        self.config = config
        self.featurizer = Featurizer(config.features)
        self.updates = 0
        self.rng = np.random.default_rng(seed)
        self._init_arrays(config.features.dim)

    def _init_arrays(self, dim: int) -> None:
        raise NotImplementedError

    def featurize(self, *, context, customer, actions: list[Action]) -> FeatureBatch:
        return self.featurizer.featurize(context=context, customer=customer, actions=actions)

    def predict(self, batch: FeatureBatch) -> np.ndarray:
        """Expected reward of every candidate (no exploration bonus)."""
        raise NotImplementedError

    def top_distribution(
        self, batch: FeatureBatch, *, epsilon: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(p over candidates for the top slot, scores used to order the rest); `epsilon`
        overrides the configured exploration share for this call (an experiment variant's)."""
        raise NotImplementedError

    def update(self, batch: FeatureBatch, action: int, reward: float) -> None:
        raise NotImplementedError

    def rank(
        self,
        batch: FeatureBatch,
        *,
        epsilon: float | None = None,
        rng: np.random.Generator | None = None,
    ) -> Ranking:
        p, scores = self.top_distribution(batch, epsilon=epsilon)
        return ranking_from(p, scores, rng=rng or self.rng)

    def _epsilon(self, epsilon: float | None) -> float:
        return self.config.epsilon if epsilon is None else epsilon

    def to_bytes(self, *, compress: bool = True) -> bytes:
        """The state as an .npz archive; `compress=False` is twice the size and loads about
        ten times faster (what web processes reload on every published version)."""
        buffer = io.BytesIO()
        meta = {"format": FORMAT_VERSION, "updates": self.updates, "config": self.config.to_dict()}
        arrays = {name: getattr(self, name) for name in self.array_names}
        save = np.savez_compressed if compress else np.savez
        save(buffer, meta=np.array(json.dumps(meta)), **arrays)
        return buffer.getvalue()


def ranking_from(p: np.ndarray, scores: np.ndarray, *, rng: np.random.Generator) -> Ranking:
    """Draw the top action from p, order the rest by score (ties by index)."""
    cumulative = np.cumsum(p)
    chosen = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
    chosen = min(chosen, len(p) - 1)
    rest = np.argsort(-scores, kind="stable")
    order = np.concatenate(([chosen], rest[rest != chosen]))
    return Ranking(
        order=tuple(order.tolist()),
        probabilities=tuple(p[order].tolist()),
        scores=tuple(scores[order].tolist()),
        greedy=int(np.argmax(p)),
    )


def baseline_ranking(
    k: int, *, epsilon: float, rng: np.random.Generator, baseline: int = 0
) -> Ranking:
    """The baseline's candidate first with probability 1 - eps + eps / K (a uniform one
    otherwise), the rest in the given order: the default a learned policy is compared with
    (apprentice mode, an experiment's priority variant), logged with usable propensities."""
    p = np.full(k, epsilon / k)
    p[baseline] += 1.0 - epsilon
    given_order = -np.arange(k, dtype=float)
    given_order[baseline] = 1.0
    return ranking_from(p, given_order, rng=rng)


class LogisticPolicy(Policy):
    """Online logistic regression (AdaGrad) with epsilon-greedy exploration."""

    kind = LOGISTIC
    array_names = ("weights", "grad_squares")

    def _init_arrays(self, dim: int) -> None:
        self.weights = np.zeros(dim)
        self.grad_squares = np.zeros(dim)

    def predict(self, batch: FeatureBatch) -> np.ndarray:
        return sigmoid(batch.linear_scores(self.weights))

    def top_distribution(
        self, batch: FeatureBatch, *, epsilon: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        scores = self.predict(batch)
        return greedy_distribution(scores, self._epsilon(epsilon)), scores

    def update(self, batch: FeatureBatch, action: int, reward: float) -> None:
        x = batch.action_indices(action)
        gradient = float(sigmoid(self.weights[x].sum())) - reward
        np.add.at(self.grad_squares, x, gradient * gradient)
        step = self.config.learning_rate * gradient / (np.sqrt(self.grad_squares[x]) + 1e-8)
        if self.config.l2:
            step = step + self.config.learning_rate * self.config.l2 * self.weights[x]
        np.subtract.at(self.weights, x, step)
        self.updates += 1


class _DiagonalRidge(Policy):
    """theta and diag(A) of a ridge regression kept with the diagonal Sherman-Morrison step."""

    array_names = ("theta", "precision")

    def _init_arrays(self, dim: int) -> None:
        self.theta = np.zeros(dim)
        self.precision = np.full(dim, self.config.ridge)

    def predict(self, batch: FeatureBatch) -> np.ndarray:
        return np.clip(batch.linear_scores(self.theta), 0.0, 1.0)

    def _mean_and_variance(self, batch: FeatureBatch) -> tuple[np.ndarray, np.ndarray]:
        mean = batch.linear_scores(self.theta)
        variance = batch.linear_scores(1.0 / self.precision)
        return mean, variance

    def update(self, batch: FeatureBatch, action: int, reward: float) -> None:
        x = batch.action_indices(action)
        inverse = 1.0 / self.precision[x]
        error = reward - self.theta[x].sum()
        np.add.at(self.theta, x, inverse * (error / (1.0 + inverse.sum())))
        np.add.at(self.precision, x, 1.0)
        self.updates += 1


class LinUcbPolicy(_DiagonalRidge):
    kind = LINUCB

    def top_distribution(
        self, batch: FeatureBatch, *, epsilon: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        mean, variance = self._mean_and_variance(batch)
        ucb = mean + self.config.alpha * np.sqrt(variance)
        return greedy_distribution(ucb, self._epsilon(epsilon)), ucb


class ThompsonPolicy(_DiagonalRidge):
    kind = THOMPSON

    def top_distribution(
        self, batch: FeatureBatch, *, epsilon: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        mean, variance = self._mean_and_variance(batch)
        k = len(mean)
        draws = self.rng.standard_normal((self.config.draws, k))
        samples = mean + self.config.noise * np.sqrt(variance) * draws
        wins = np.bincount(samples.argmax(axis=1), minlength=k) / self.config.draws
        eps = self._epsilon(epsilon)
        return eps / k + (1.0 - eps) * wins, mean


POLICY_CLASSES: dict[str, type[Policy]] = {
    LOGISTIC: LogisticPolicy,
    LINUCB: LinUcbPolicy,
    THOMPSON: ThompsonPolicy,
}


def make_policy(config: PolicyConfig | None = None, *, seed: int | None = None) -> Policy:
    """A fresh (untrained) policy of `config.kind`."""
    config = config or PolicyConfig()
    return POLICY_CLASSES[config.kind](config, seed=seed)


def policy_from_bytes(data: bytes, *, seed: int | None = None) -> Policy:
    """Inverse of `Policy.to_bytes()`; refuses states of another format version."""
    with np.load(io.BytesIO(data), allow_pickle=False) as stored:
        meta = json.loads(str(stored["meta"]))
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"unsupported policy format {meta.get('format')!r}")
        policy = make_policy(PolicyConfig.from_dict(meta["config"]), seed=seed)
        for name in policy.array_names:
            array = np.array(stored[name], dtype=np.float64)
            if array.shape != getattr(policy, name).shape:
                raise ValueError(f"array {name} has shape {array.shape}, config says otherwise")
            setattr(policy, name, array)
    policy.updates = int(meta["updates"])
    return policy

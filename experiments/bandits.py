"""Multi-armed bandit allocation, Django-free: from per-arm (users, successes) to the traffic
weights in force until the next reweighting, plus the inverse propensity weighting (IPW)
estimator that keeps arm estimates unbiased although the weights changed along the way.

The product reweights in batches (a Celery task every 10 minutes), not per request, so every
policy returns a probability vector over arms (the assignment weights), not a single arm:

- `fixed`: the configured weights, always (A/B/n test).
- `epsilon_greedy`: 1 - epsilon on the arm with the best observed rate, epsilon spread evenly.
- `ucb1`: all traffic to the arm with the highest UCB1 index mean + sqrt(2 ln N / n)
  (Auer et al. 2002); in batch mode this is one UCB step per batch.
- `thompson`: the probability that each arm is best under its Beta(1 + s, 1 + n - s)
  posterior (batched Thompson sampling = probability matching), Monte Carlo with a seed.

Two rules wrap every adaptive policy (`AllocationRules`):
- burn-in: until every arm has `burn_in` users (default 100) the initial weights stay in force,
  so early noise cannot starve an arm;
- minimum share: each arm keeps at least `min_share` (default 1%) of traffic, mixed in as
  w = m + (1 - K m) w. This keeps every propensity >= m, which IPW needs (an arm at weight 0
  can no longer be measured), and lets a wrongly demoted arm recover.

Given the same inputs and seed, every function returns the same weights.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

FIXED = "fixed"
EPSILON_GREEDY = "epsilon_greedy"
UCB1 = "ucb1"
THOMPSON = "thompson"
POLICIES = (FIXED, EPSILON_GREEDY, UCB1, THOMPSON)


@dataclass(frozen=True)
class AllocationRules:
    burn_in: int = 100
    min_share: float = 0.01
    epsilon: float = 0.1
    thompson_draws: int = 10_000


def _arrays(n: Sequence[int], successes: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    n_arr = np.asarray(n, dtype=np.float64)
    s_arr = np.asarray(successes, dtype=np.float64)
    if n_arr.shape != s_arr.shape or n_arr.ndim != 1 or len(n_arr) < 1:
        raise ValueError("n and successes must be equally long, non-empty sequences")
    if (n_arr < 0).any() or (s_arr < 0).any() or (s_arr > n_arr).any():
        raise ValueError("need 0 <= successes <= n for every arm")
    return n_arr, s_arr


def normalized(weights: ArrayLike) -> np.ndarray:
    """Weights as probabilities summing to 1 (all equal when they sum to 0)."""
    w = np.asarray(weights, dtype=np.float64)
    if (w < 0).any():
        raise ValueError("weights must not be negative")
    total = w.sum()
    return w / total if total > 0 else np.full(len(w), 1 / len(w))


def apply_min_share(weights: np.ndarray, min_share: float) -> np.ndarray:
    """Mix with the uniform floor: every arm gets at least `min_share`, order is kept."""
    k = len(weights)
    if not 0 <= min_share * k <= 1:
        raise ValueError(f"min_share {min_share} is impossible with {k} arms")
    return min_share + (1 - k * min_share) * normalized(weights)


def _best(values: np.ndarray) -> np.ndarray:
    """One-hot on the maximum, ties shared equally (so the result does not depend on order)."""
    top = values == values.max()
    return top / top.sum()


def epsilon_greedy_weights(n: np.ndarray, successes: np.ndarray, *, epsilon: float) -> np.ndarray:
    rates = np.divide(successes, n, out=np.zeros_like(n), where=n > 0)
    return (1 - epsilon) * _best(rates) + epsilon / len(n)


def ucb1_weights(n: np.ndarray, successes: np.ndarray) -> np.ndarray:
    if (n == 0).any():
        return _best((n == 0).astype(np.float64))
    index = successes / n + np.sqrt(2 * np.log(n.sum()) / n)
    return _best(index)


def thompson_weights(
    n: np.ndarray, successes: np.ndarray, *, draws: int, rng: np.random.Generator
) -> np.ndarray:
    samples = rng.beta(1 + successes, 1 + n - successes, size=(draws, len(n)))
    return np.bincount(samples.argmax(axis=1), minlength=len(n)) / draws


def allocate(
    policy: str,
    n: Sequence[int],
    successes: Sequence[int],
    *,
    initial_weights: Sequence[float] | None = None,
    rules: AllocationRules = AllocationRules(),  # noqa: B008 (frozen, never mutated)
    seed: int = 0,
) -> np.ndarray:
    """The assignment weights (summing to 1) for the next period.

    `n` and `successes` are the cumulative users and successes per arm; `initial_weights`
    (default equal) are used by `fixed` and during burn-in. `seed` makes Thompson sampling
    reproducible (pass e.g. the reweighting run's number so successive runs differ)."""
    n_arr, s_arr = _arrays(n, successes)
    initial = normalized(initial_weights if initial_weights is not None else np.ones(len(n_arr)))
    if len(initial) != len(n_arr):
        raise ValueError("one initial weight per arm")
    if policy == FIXED or (n_arr < rules.burn_in).any():
        return initial
    if policy == EPSILON_GREEDY:
        weights = epsilon_greedy_weights(n_arr, s_arr, epsilon=rules.epsilon)
    elif policy == UCB1:
        weights = ucb1_weights(n_arr, s_arr)
    elif policy == THOMPSON:
        rng = np.random.default_rng(seed)
        weights = thompson_weights(n_arr, s_arr, draws=rules.thompson_draws, rng=rng)
    else:
        raise ValueError(f"unknown policy {policy!r}; one of {', '.join(POLICIES)}")
    return apply_min_share(weights, rules.min_share)


def choose_arm(weights: Sequence[float], u: float) -> int:
    """The arm whose cumulative-weight slot contains `u` in [0, 1) (a hash bucket / 2^k):
    how a sticky hash assignment turns weights into an arm."""
    cumulative = np.cumsum(normalized(weights))
    slot = int(np.searchsorted(cumulative, u, side="right"))
    return min(slot, len(cumulative) - 1)


@dataclass(frozen=True)
class IpwEstimate:
    """Per-arm estimates from logged (arm, propensity, reward).

    `rate` is the Horvitz-Thompson estimate (1/T) sum 1(arm_t = k) r_t / p_t: unbiased for the
    arm's true rate whatever the (logged, positive) weights were, because each round contributes
    r / p with probability p. `standard_error` is its plug-in standard error.
    `rate_hajek` divides by sum 1(arm_t = k) / p_t instead of T: consistent, not exactly
    unbiased, but with lower variance and always inside [0, 1]; prefer it for display."""

    rate: np.ndarray
    standard_error: np.ndarray
    rate_hajek: np.ndarray

    def to_dict(self) -> dict[str, list[float]]:
        return {
            "rate": self.rate.tolist(),
            "standard_error": self.standard_error.tolist(),
            "rate_hajek": self.rate_hajek.tolist(),
        }


def ipw_estimate(arms, propensities, rewards, *, n_arms: int) -> IpwEstimate:
    """IPW estimate of each arm's mean reward from the assignment log.

    `arms[t]` is the arm assigned in round t, `propensities[t]` the weight that arm had at that
    moment (logged at assignment), `rewards[t]` the outcome (0/1 or a value)."""
    a = np.asarray(arms, dtype=np.int64)
    p = np.asarray(propensities, dtype=np.float64)
    r = np.asarray(rewards, dtype=np.float64)
    if not (a.shape == p.shape == r.shape) or a.ndim != 1:
        raise ValueError("arms, propensities and rewards must be equally long 1-d sequences")
    if len(a) and ((p <= 0).any() or (p > 1).any()):
        raise ValueError("propensities must be in (0, 1]")
    if len(a) and (a.min() < 0 or a.max() >= n_arms):
        raise ValueError("arm index out of range")
    t = len(a)
    if t == 0:
        nan = np.full(n_arms, np.nan)
        return IpwEstimate(nan, nan, nan.copy())
    inverse = 1 / p
    total = np.bincount(a, weights=r * inverse, minlength=n_arms)
    total_sq = np.bincount(a, weights=(r * inverse) ** 2, minlength=n_arms)
    weight = np.bincount(a, weights=inverse, minlength=n_arms)
    rate = total / t
    variance = np.maximum(total_sq / t - rate**2, 0.0) / t
    hajek = np.divide(total, weight, out=np.full(n_arms, np.nan), where=weight > 0)
    return IpwEstimate(rate, np.sqrt(variance), hajek)

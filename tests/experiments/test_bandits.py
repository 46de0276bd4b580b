"""Bandit allocation rules and the IPW estimator (simulation against the true rates)."""

import numpy as np
import pytest

from experiments.bandits import (
    EPSILON_GREEDY,
    FIXED,
    THOMPSON,
    UCB1,
    AllocationRules,
    allocate,
    apply_min_share,
    choose_arm,
    ipw_estimate,
)
from experiments.stats.base import BinomialStats
from experiments.stats.bayesian import beta_prob_best


@pytest.mark.parametrize("policy", [EPSILON_GREEDY, UCB1, THOMPSON])
def test_initial_weights_hold_until_every_arm_has_the_burn_in(policy):
    weights = allocate(policy, [99, 5000], [1, 500], initial_weights=[1, 3])
    assert weights.tolist() == [0.25, 0.75]
    after = allocate(policy, [100, 5000], [1, 500], initial_weights=[1, 3])
    assert after.tolist() != [0.25, 0.75]


def test_burn_in_is_configurable():
    rules = AllocationRules(burn_in=10)
    assert allocate(UCB1, [10, 10], [1, 5], rules=rules).tolist() == [0.01, 0.99]


@pytest.mark.parametrize("policy", [EPSILON_GREEDY, UCB1, THOMPSON])
def test_every_arm_keeps_the_minimum_share(policy):
    weights = allocate(policy, [10_000, 10_000, 10_000], [100, 900, 300])
    assert weights.sum() == pytest.approx(1.0)
    assert weights.min() >= 0.01 - 1e-12
    assert weights.argmax() == 1
    bigger = allocate(policy, [10_000] * 3, [100, 900, 300], rules=AllocationRules(min_share=0.05))
    assert bigger.min() >= 0.05 - 1e-12


def test_policy_weights_known_values():
    n, s = [1000, 1000], [40, 50]
    assert allocate(FIXED, n, s, initial_weights=[2, 1]).tolist() == pytest.approx([2 / 3, 1 / 3])
    # epsilon 0.1: 0.9 + 0.05 on the best, 0.05 on the other, then the 1% floor
    assert allocate(EPSILON_GREEDY, n, s).tolist() == pytest.approx(
        [0.01 + 0.98 * 0.05, 0.01 + 0.98 * 0.95]
    )
    assert allocate(UCB1, n, s).tolist() == pytest.approx([0.01, 0.99])
    # UCB1 explores an arm with few users despite a lower mean
    assert allocate(UCB1, [100, 20_000], [4, 1000]).argmax() == 0


def test_thompson_weights_are_probability_best_and_seeded():
    n, s = [1000, 1000, 1000], [40, 50, 45]
    first = allocate(THOMPSON, n, s, seed=3, rules=AllocationRules(thompson_draws=200_000))
    assert (
        first == allocate(THOMPSON, n, s, seed=3, rules=AllocationRules(thompson_draws=200_000))
    ).all()
    stats = [BinomialStats(k, x) for k, x in zip(n, s, strict=True)]
    expected = apply_min_share(beta_prob_best(stats, draws=400_000, seed=1), 0.01)
    assert first == pytest.approx(expected, abs=0.005)
    assert not (allocate(THOMPSON, n, s, seed=4) == allocate(THOMPSON, n, s, seed=3)).all()


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="unknown policy"):
        allocate("greedy", [200, 200], [1, 2])
    with pytest.raises(ValueError, match="successes <= n"):
        allocate(UCB1, [200, 200], [1, 201])
    with pytest.raises(ValueError, match="min_share"):
        allocate(UCB1, [200] * 3, [1, 2, 3], rules=AllocationRules(min_share=0.4))


def test_choose_arm_maps_a_bucket_to_the_weight_slots():
    weights = [0.2, 0.5, 0.3]
    assert [choose_arm(weights, u) for u in (0.0, 0.19, 0.2, 0.69, 0.7, 0.9999)] == [
        0,
        0,
        1,
        1,
        2,
        2,
    ]


def _adaptive_log(rates: np.ndarray, seed: int):
    """One greedy-ish adaptive experiment (epsilon 0.2, reweighted every 100 users) logged as
    (arm, propensity, reward) rows, as the product logs assignments."""
    rng = np.random.default_rng(seed)
    rules = AllocationRules(burn_in=20, epsilon=0.2, min_share=0.02)
    n, s = np.zeros(len(rates), dtype=np.int64), np.zeros(len(rates), dtype=np.int64)
    arms, propensities, rewards = [], [], []
    for _ in range(20):
        weights = allocate(EPSILON_GREEDY, n, s, rules=rules)
        arm = rng.choice(len(rates), size=100, p=weights)
        reward = (rng.random(100) < rates[arm]).astype(np.int64)
        arms.append(arm)
        propensities.append(weights[arm])
        rewards.append(reward)
        n += np.bincount(arm, minlength=len(rates))
        s += np.bincount(arm, weights=reward, minlength=len(rates)).astype(np.int64)
    return np.concatenate(arms), np.concatenate(propensities), np.concatenate(rewards), s / n


def test_ipw_estimate_is_unbiased_under_changing_weights_naive_mean_is_not():
    rates = np.array([0.10, 0.12, 0.11])
    runs = [_adaptive_log(rates, seed) for seed in range(800)]
    estimates = np.array([ipw_estimate(a, p, r, n_arms=3).rate for a, p, r, _ in runs])
    naive = np.array([run[3] for run in runs])
    standard_error = estimates.std(axis=0, ddof=1) / np.sqrt(len(runs))
    assert (np.abs(estimates.mean(axis=0) - rates) < 3 * standard_error).all()
    # adaptive allocation starves arms after unlucky starts: the plain mean underestimates them
    naive_error = naive.mean(axis=0) - rates
    naive_se = naive.std(axis=0, ddof=1) / np.sqrt(len(runs))
    assert (naive_error[[0, 2]] < -3 * naive_se[[0, 2]]).all()


def test_ipw_estimate_values_and_errors():
    estimate = ipw_estimate([0, 1, 1, 0], [0.5, 0.5, 0.25, 0.25], [1, 0, 1, 0], n_arms=2)
    assert estimate.rate.tolist() == [0.5, 1.0]
    assert estimate.rate_hajek.tolist() == pytest.approx([2 / 6, 4 / 6])
    assert estimate.to_dict()["rate"] == [0.5, 1.0]
    with pytest.raises(ValueError, match="propensities"):
        ipw_estimate([0], [0.0], [1], n_arms=2)

"""mSPRT: the closed form against numerical integration, and the always-valid guarantee by
simulation of 1,000 A/A tests peeked at daily (next to a naive z-test, which fails)."""

import math

import numpy as np
import pytest
from scipy import integrate
from scipy import stats as sps

from experiments.stats.base import BinomialStats
from experiments.stats.sequential import (
    always_valid_p_values,
    msprt_log_lambda,
    msprt_test,
)

TESTS, DAYS, USERS_PER_DAY, RATE = 1000, 30, 500, 0.05
TAU2 = (0.1 * RATE) ** 2


def test_log_lambda_is_the_normal_mixture_likelihood_ratio():
    difference, variance, tau2 = 0.004, 2e-6, 1e-5
    numerator, _ = integrate.quad(
        lambda theta: (
            sps.norm.pdf(difference, theta, math.sqrt(variance))
            * sps.norm.pdf(theta, 0, math.sqrt(tau2))
        ),
        -0.05,
        0.05,
        points=[0.0, difference],
    )
    expected = math.log(numerator / sps.norm.pdf(difference, 0, math.sqrt(variance)))
    assert float(msprt_log_lambda(difference, variance, tau2)) == pytest.approx(expected, rel=1e-6)


def test_p_value_is_running_minimum_and_interval_agrees_with_it():
    control, treatment = BinomialStats(4000, 200), BinomialStats(4000, 260)
    first = msprt_test(control.moments(), treatment.moments(), tau2=TAU2)
    assert first.p_value == pytest.approx(min(1.0, math.exp(-first.log_likelihood_ratio)))
    later = msprt_test(
        BinomialStats(5000, 260).moments(),
        BinomialStats(5000, 300).moments(),
        tau2=TAU2,
        previous_p=first.p_value,
    )
    assert later.p_value == first.p_value < math.exp(-later.log_likelihood_ratio)
    # rejecting at 5% <=> the 95% confidence sequence excludes 0
    assert (first.p_value < 0.05) == (not first.interval.contains(0.0))


def _simulate(rate_treatment: float, seed: int):
    rng = np.random.default_rng(seed)
    n = USERS_PER_DAY * np.arange(1, DAYS + 1)
    conv_c = rng.binomial(USERS_PER_DAY, RATE, size=(TESTS, DAYS)).cumsum(axis=1)
    conv_t = rng.binomial(USERS_PER_DAY, rate_treatment, size=(TESTS, DAYS)).cumsum(axis=1)
    p_c, p_t = conv_c / n, conv_t / n
    variance = (p_c * (1 - p_c) + p_t * (1 - p_t)) / (n - 1)
    sequential_p = always_valid_p_values(p_t - p_c, variance, TAU2)
    pooled = (conv_c + conv_t) / (2 * n)
    z = (p_t - p_c) / np.sqrt(pooled * (1 - pooled) * 2 / n)
    naive_p = 2 * sps.norm.sf(np.abs(z))
    return sequential_p, naive_p


def test_msprt_keeps_false_positives_at_5_percent_under_daily_peeking_naive_test_does_not():
    sequential_p, naive_p = _simulate(RATE, seed=20261202)
    msprt_fpr = (sequential_p.min(axis=1) < 0.05).mean()
    naive_fpr = (naive_p.min(axis=1) < 0.05).mean()
    assert msprt_fpr <= 0.05
    assert naive_fpr > 0.15
    # each single look of the naive test is a valid 5% test; only peeking inflates it
    assert (naive_p[:, -1] < 0.05).mean() == pytest.approx(0.05, abs=0.02)


def test_msprt_detects_a_real_lift():
    sequential_p, _ = _simulate(RATE * 1.25, seed=7)
    assert (sequential_p[:, -1] < 0.05).mean() > 0.8

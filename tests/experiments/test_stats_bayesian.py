"""Beta-Binomial closed forms against Monte Carlo, normal approximation against its formula."""

import math

import numpy as np
import pytest

from experiments.stats.base import BinomialStats, SampleMoments
from experiments.stats.bayesian import (
    beta_expected_loss,
    beta_prob_beat,
    beta_prob_best,
    means_expected_loss,
    means_prob_beat,
    normal_expected_loss,
    normal_prob_beat,
)

DRAWS = 2_000_000


def _monte_carlo(control: BinomialStats, treatment: BinomialStats, seed: int = 5):
    rng = np.random.default_rng(seed)
    a = rng.beta(1 + control.successes, 1 + control.n - control.successes, DRAWS)
    b = rng.beta(1 + treatment.successes, 1 + treatment.n - treatment.successes, DRAWS)
    return (b > a).mean(), np.maximum(a - b, 0).mean(), np.maximum(b - a, 0).mean()


@pytest.mark.parametrize(
    ("control", "treatment"),
    [
        (BinomialStats(1000, 100), BinomialStats(1000, 120)),
        (BinomialStats(150, 3), BinomialStats(160, 9)),
        (BinomialStats(50_000, 2_500), BinomialStats(50_000, 2_430)),
    ],
)
def test_beta_closed_forms_match_monte_carlo(control, treatment):
    prob, loss, loss_control = _monte_carlo(control, treatment)
    assert beta_prob_beat(control, treatment) == pytest.approx(prob, abs=0.002)
    assert beta_expected_loss(control, treatment) == pytest.approx(loss, rel=0.01, abs=1e-7)
    assert beta_expected_loss(treatment, control) == pytest.approx(loss_control, rel=0.01, abs=1e-7)


def test_beta_prob_beat_is_complementary_and_deterministic():
    a, b = BinomialStats(800, 40), BinomialStats(820, 55)
    assert beta_prob_beat(a, b) + beta_prob_beat(b, a) == pytest.approx(1.0, abs=1e-12)
    assert beta_prob_beat(a, b) == beta_prob_beat(a, b)
    assert beta_prob_beat(a, a) == pytest.approx(0.5, abs=1e-12)


def test_beta_prob_beat_huge_counts_use_normal_form_close_to_monte_carlo():
    control, treatment = BinomialStats(5_000_000, 250_000), BinomialStats(5_000_000, 251_000)
    prob, loss, _ = _monte_carlo(control, treatment)
    assert beta_prob_beat(control, treatment) == pytest.approx(prob, abs=0.002)
    assert beta_expected_loss(control, treatment) == pytest.approx(loss, rel=0.02)


def test_normal_forms_known_values():
    assert normal_prob_beat(10.0, 0.3, 10.0, 0.4) == 0.5
    # equal means: E[max(D, 0)] for D ~ N(0, s^2) is s / sqrt(2 pi), s = 0.5
    assert normal_expected_loss(10.0, 0.3, 10.0, 0.4) == pytest.approx(0.5 / math.sqrt(2 * math.pi))
    # difference 1 with s = 0.5: P = Phi(2)
    assert normal_prob_beat(10.0, 0.3, 11.0, 0.4) == pytest.approx(0.9772498680518208)


def test_means_bayesian_figures_match_monte_carlo_of_normal_posteriors():
    control = SampleMoments(n=900, mean=12.0, variance=400.0)
    treatment = SampleMoments(n=1000, mean=13.1, variance=450.0)
    rng = np.random.default_rng(2)
    a = rng.normal(control.mean, control.standard_error, DRAWS)
    b = rng.normal(treatment.mean, treatment.standard_error, DRAWS)
    assert means_prob_beat(control, treatment) == pytest.approx((b > a).mean(), abs=0.002)
    assert means_expected_loss(control, treatment) == pytest.approx(
        np.maximum(a - b, 0).mean(), rel=0.01
    )


def test_beta_prob_best_is_seeded_and_agrees_with_pairwise_for_two_arms():
    arms = [BinomialStats(1000, 100), BinomialStats(1000, 120)]
    first = beta_prob_best(arms, seed=7)
    assert first.sum() == pytest.approx(1.0)
    assert (first == beta_prob_best(arms, seed=7)).all()
    assert first[1] == pytest.approx(beta_prob_beat(arms[0], arms[1]), abs=0.005)
    three = beta_prob_best([*arms, BinomialStats(1000, 60)], seed=7)
    assert three[2] < 0.001
    assert three.argmax() == 1

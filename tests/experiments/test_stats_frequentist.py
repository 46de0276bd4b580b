"""Fixed-horizon methods against scipy and Newcombe (1998)'s worked examples. No database."""

import numpy as np
import pytest
from scipy import stats as sps
from scipy.stats.contingency import relative_risk

from experiments.stats.base import BinomialStats, SampleMoments
from experiments.stats.frequentist import (
    mean_difference_interval,
    mean_relative_lift_interval,
    rate_difference_interval,
    rate_relative_lift_interval,
    two_proportion_ztest,
    welch_ttest,
    wilson_interval,
)


@pytest.mark.parametrize(
    ("n", "k", "lower", "upper"),
    [
        (263, 81, 0.2553, 0.3662),
        (148, 15, 0.0624, 0.1605),
        (20, 0, 0.0, 0.1611),
        (29, 1, 0.0061, 0.1718),
    ],
)
def test_wilson_interval_matches_newcombe_table_and_scipy(n, k, lower, upper):
    interval = wilson_interval(BinomialStats(n, k))
    assert interval.estimate == k / n
    assert round(interval.lower, 4) == lower
    assert round(interval.upper, 4) == upper
    reference = sps.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert interval.lower == pytest.approx(reference.low, abs=1e-12)
    assert interval.upper == pytest.approx(reference.high, abs=1e-12)


def test_wilson_interval_at_other_levels_matches_scipy():
    interval = wilson_interval(BinomialStats(1000, 37), alpha=0.01)
    reference = sps.binomtest(37, 1000).proportion_ci(confidence_level=0.99, method="wilson")
    assert (interval.lower, interval.upper) == pytest.approx((reference.low, reference.high))


@pytest.mark.parametrize(
    ("control", "treatment", "lower", "upper"),
    [((80, 48), (70, 56), 0.0524, 0.3339), ((10, 3), (10, 9), 0.1705, 0.8090)],
)
def test_rate_difference_is_newcombe_hybrid_score_interval(control, treatment, lower, upper):
    interval = rate_difference_interval(BinomialStats(*control), BinomialStats(*treatment))
    assert interval.estimate == pytest.approx(treatment[1] / treatment[0] - control[1] / control[0])
    assert (round(interval.lower, 4), round(interval.upper, 4)) == (lower, upper)


def test_relative_lift_is_katz_log_interval_of_scipy_relative_risk():
    interval = rate_relative_lift_interval(BinomialStats(80, 48), BinomialStats(70, 56))
    reference = relative_risk(56, 70, 48, 80)
    ci = reference.confidence_interval(confidence_level=0.95)
    assert interval.estimate == pytest.approx(reference.relative_risk - 1)
    assert interval.lower == pytest.approx(ci.low - 1)
    assert interval.upper == pytest.approx(ci.high - 1)


def test_relative_lift_undefined_without_control_conversions():
    interval = rate_relative_lift_interval(BinomialStats(100, 0), BinomialStats(100, 3))
    assert np.isnan([interval.estimate, interval.lower, interval.upper]).all()
    assert interval.to_dict() == {"estimate": None, "lower": None, "upper": None}


def test_two_proportion_ztest_equals_chi_square_without_correction():
    control, treatment = BinomialStats(2000, 100), BinomialStats(2100, 140)
    result = two_proportion_ztest(control, treatment)
    table = [[100, 1900], [140, 1960]]
    chi2, p, _, _ = sps.chi2_contingency(table, correction=False)
    assert result.statistic > 0
    assert result.statistic**2 == pytest.approx(chi2)
    assert result.p_value == pytest.approx(p)


def test_two_proportion_ztest_worked_example():
    # 48/80 vs 56/70: pooled p = 104/150, se = sqrt(104/150 * 46/150 * (1/80 + 1/70)) = 0.075467
    result = two_proportion_ztest(BinomialStats(80, 48), BinomialStats(70, 56))
    assert round(result.statistic, 4) == 2.6502
    assert round(result.p_value, 4) == 0.0080
    assert two_proportion_ztest(BinomialStats(80, 48), BinomialStats(80, 48)).p_value == 1.0


def _moments(x: np.ndarray) -> SampleMoments:
    return SampleMoments.from_sums(n=len(x), total=float(x.sum()), total_sq=float((x * x).sum()))


def test_welch_ttest_from_sums_matches_scipy_on_revenue_like_data():
    rng = np.random.default_rng(3)
    control = rng.exponential(20, 800) * (rng.random(800) < 0.1)
    treatment = rng.exponential(24, 650) * (rng.random(650) < 0.11)
    result = welch_ttest(_moments(control), _moments(treatment))
    reference = sps.ttest_ind(treatment, control, equal_var=False)
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-9)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert result.df == pytest.approx(reference.df, rel=1e-9)
    interval = mean_difference_interval(_moments(control), _moments(treatment))
    ci = reference.confidence_interval(0.95)
    assert interval.estimate == pytest.approx(treatment.mean() - control.mean())
    assert (interval.lower, interval.upper) == pytest.approx((ci.low, ci.high), rel=1e-9)


def test_sample_moments_from_sums_match_numpy():
    x = np.array([0.0, 0.0, 12.5, 30.0, 0.0, 7.25])
    moments = _moments(x)
    assert moments.mean == pytest.approx(x.mean())
    assert moments.variance == pytest.approx(x.var(ddof=1))
    assert BinomialStats(6, 2).moments().variance == pytest.approx(
        np.var([1, 1, 0, 0, 0, 0], ddof=1)
    )


def test_mean_relative_lift_delta_method_covers_true_lift():
    """Coverage of the 95% delta-method interval over 400 simulated experiments (true lift 10%)."""
    rng = np.random.default_rng(11)
    covered = 0
    for _ in range(400):
        c = rng.gamma(2.0, 5.0, 2000)
        t = rng.gamma(2.0, 5.5, 2000)
        interval = mean_relative_lift_interval(_moments(c), _moments(t))
        covered += interval.contains(0.10)
    assert 0.92 <= covered / 400 <= 0.98


def test_binomial_stats_reject_impossible_counts():
    with pytest.raises(ValueError, match="successes <= n"):
        BinomialStats(10, 11)

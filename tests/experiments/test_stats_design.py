"""SRM, Holm, power and CUPED against scipy, textbook values and direct computation."""

import numpy as np
import pytest
from scipy import stats as sps

from experiments.stats.design import (
    CupedSums,
    bonferroni_adjust,
    cuped_adjust,
    holm_adjust,
    sample_ratio_mismatch,
    sample_size_means,
    sample_size_proportions,
)


@pytest.mark.parametrize(
    ("observed", "weights", "mismatch"),
    [
        ([5000, 5080], [1, 1], False),
        ([50_000, 51_200], [1, 1], True),
        ([1000, 980, 2050], [1, 1, 2], False),
        ([1000, 1200, 2000], [0.25, 0.25, 0.5], True),
    ],
)
def test_sample_ratio_mismatch_matches_scipy_chisquare(observed, weights, mismatch):
    result = sample_ratio_mismatch(observed, weights)
    w = np.asarray(weights) / sum(weights)
    reference = sps.chisquare(observed, f_exp=w * sum(observed))
    assert result.chi2 == pytest.approx(reference.statistic)
    assert result.p_value == pytest.approx(reference.pvalue)
    assert result.mismatch is mismatch
    assert result.mismatch is bool(reference.pvalue < 0.001)


def test_sample_ratio_mismatch_rejects_bad_weights():
    with pytest.raises(ValueError, match="positive"):
        sample_ratio_mismatch([10, 10], [1, 0])


def test_holm_and_bonferroni_known_values():
    assert holm_adjust([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm_adjust([0.2, 0.001, 0.6, 0.02]) == pytest.approx([0.4, 0.004, 0.6, 0.06])
    assert bonferroni_adjust([0.01, 0.04, 0.5]) == pytest.approx([0.03, 0.12, 1.0])
    adjusted = holm_adjust([0.02, float("nan")])
    assert adjusted[0] == 0.02
    assert np.isnan(adjusted[1])


def test_sample_size_proportions_textbook_and_achieved_power():
    # Fleiss without continuity correction: 0.40 vs 0.60, alpha 0.05, power 0.8 -> 97 per group
    assert sample_size_proportions(baseline=0.4, mde=0.2) == 97
    n = sample_size_proportions(baseline=0.05, mde=0.005, alpha=0.05, power=0.8)
    p0, p1 = 0.05, 0.055
    z = sps.norm.ppf(0.975)
    pbar = (p0 + p1) / 2
    se0 = np.sqrt(2 * pbar * (1 - pbar) / n)
    se1 = np.sqrt((p0 * (1 - p0) + p1 * (1 - p1)) / n)
    achieved = sps.norm.cdf(((p1 - p0) - z * se0) / se1)
    assert 0.8 <= achieved < 0.8005


def test_sample_size_means_textbook():
    # effect size d = 0.5, alpha 0.05, power 0.8 -> 2 (1.96 + 0.84)^2 / 0.25 = 63 per group
    assert sample_size_means(std=1.0, mde=0.5) == 63
    assert sample_size_means(std=40.0, mde=2.0, power=0.9) == 8406
    with pytest.raises(ValueError, match="mde"):
        sample_size_means(std=1.0, mde=0.0)


def _sums(x: np.ndarray, y: np.ndarray) -> CupedSums:
    return CupedSums(
        n=len(y),
        sum_y=float(y.sum()),
        sum_y2=float((y * y).sum()),
        sum_x=float(x.sum()),
        sum_x2=float((x * x).sum()),
        sum_xy=float((x * y).sum()),
    )


def test_cuped_from_sums_equals_direct_adjustment_and_cuts_variance():
    rng = np.random.default_rng(4)
    data = {}
    for key, effect in [("control", 0.0), ("treatment", 1.5)]:
        x = rng.gamma(2.0, 10.0, 5000)
        y = 0.8 * x + rng.normal(5 + effect, 6.0, 5000)
        data[key] = (x, y)
    result = cuped_adjust({k: _sums(x, y) for k, (x, y) in data.items()})
    x_all = np.concatenate([x for x, _ in data.values()])
    centred = [(x - x.mean(), y - y.mean()) for x, y in data.values()]
    theta = sum((cx * cy).sum() for cx, cy in centred) / sum((cx * cx).sum() for cx, _ in centred)
    assert result.theta == pytest.approx(theta)
    for key, (x, y) in data.items():
        adjusted = y - theta * (x - x_all.mean())
        assert result.adjusted[key].mean == pytest.approx(adjusted.mean())
        assert result.adjusted[key].variance == pytest.approx(adjusted.var(ddof=1))
    difference = result.adjusted["treatment"].mean - result.adjusted["control"].mean
    assert difference == pytest.approx(1.5, abs=0.4)
    rho2 = np.corrcoef(*data["control"])[0, 1] ** 2
    assert result.variance_reduction == pytest.approx(rho2, abs=0.03)
    assert result.to_dict()["adjusted"]["control"]["n"] == 5000

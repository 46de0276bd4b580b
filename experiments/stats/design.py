"""Experiment health and design: sample ratio mismatch, the minimum sample rule, correction for
several variants, power / sample size, and CUPED variance reduction.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from experiments.stats.base import JsonResult, SampleMoments

SRM_THRESHOLD = 0.001
MIN_USERS_PER_VARIANT = 150


@dataclass(frozen=True)
class SrmResult(JsonResult):
    """Chi-square goodness of fit of the users per variant against the configured weights.
    `mismatch` is True when p < threshold: assignment or logging is broken and no other number
    of the experiment can be trusted (a 0.001 threshold keeps false alarms rare when the check
    runs on every page load)."""

    observed: list[int]
    expected: list[float]
    chi2: float
    p_value: float
    mismatch: bool


def sample_ratio_mismatch(
    observed: Sequence[int], weights: Sequence[float], *, threshold: float = SRM_THRESHOLD
) -> SrmResult:
    """SRM check; `weights` need not sum to 1 (e.g. 1:1:2)."""
    if len(observed) != len(weights) or len(observed) < 2:
        raise ValueError("need one weight per variant and at least two variants")
    w = np.asarray(weights, dtype=np.float64)
    if (w <= 0).any():
        raise ValueError("weights must be positive")
    obs = np.asarray(observed, dtype=np.float64)
    total = obs.sum()
    expected = total * w / w.sum()
    if total == 0:
        return SrmResult(list(map(int, observed)), expected.tolist(), 0.0, 1.0, False)
    chi2 = float(((obs - expected) ** 2 / expected).sum())
    p = float(sps.chi2.sf(chi2, len(obs) - 1))
    return SrmResult(list(map(int, observed)), expected.tolist(), chi2, p, p < threshold)


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni step-down adjusted p-values (family-wise error rate control, uniformly
    more powerful than Bonferroni, valid under any dependence, e.g. several variants sharing one
    control). NaN p-values are left as NaN and do not count in the family."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = len(valid)
    if m == 0:
        return out.tolist()
    order = valid[np.argsort(p[valid], kind="stable")]
    stepped = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    out[order] = np.minimum(stepped, 1.0)
    return out.tolist()


def bonferroni_adjust(p_values: Sequence[float]) -> list[float]:
    """p * m, capped at 1; the matching interval level is alpha / m (used for the intervals,
    which Holm's step-down does not provide)."""
    p = np.asarray(p_values, dtype=np.float64)
    m = int((~np.isnan(p)).sum())
    return np.minimum(p * max(m, 1), 1.0).tolist()


def _z_sum(alpha: float, power: float) -> tuple[float, float]:
    if not (0 < alpha < 1 and 0 < power < 1):
        raise ValueError("alpha and power must be between 0 and 1")
    return float(sps.norm.ppf(1 - alpha / 2)), float(sps.norm.ppf(power))


def sample_size_proportions(
    *, baseline: float, mde: float, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Users per variant for a two-sided two-proportion z-test to detect an absolute lift `mde`
    over `baseline` (Fleiss' formula without continuity correction, equal allocation):
    n = (z_a sqrt(2 pbar (1 - pbar)) + z_b sqrt(p0 (1 - p0) + p1 (1 - p1)))^2 / mde^2."""
    p0, p1 = baseline, baseline + mde
    if not (0 < p0 < 1 and 0 < p1 < 1) or mde == 0:
        raise ValueError("need 0 < baseline < 1, 0 < baseline + mde < 1 and mde != 0")
    z_a, z_b = _z_sum(alpha, power)
    pbar = (p0 + p1) / 2
    root = z_a * math.sqrt(2 * pbar * (1 - pbar)) + z_b * math.sqrt(p0 * (1 - p0) + p1 * (1 - p1))
    return math.ceil(root * root / (mde * mde))


def sample_size_means(*, std: float, mde: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Users per variant for a two-sided two-sample test of means with common standard
    deviation `std`: n = 2 std^2 (z_a + z_b)^2 / mde^2."""
    if std <= 0 or mde == 0:
        raise ValueError("need std > 0 and mde != 0")
    z_a, z_b = _z_sum(alpha, power)
    return math.ceil(2 * std * std * (z_a + z_b) ** 2 / (mde * mde))


@dataclass(frozen=True)
class CupedSums:
    """Per-variant sums for CUPED: metric y in the experiment, covariate x = the same metric
    for the same user in the pre-period (0 for users new in the pre-period)."""

    n: int
    sum_y: float
    sum_y2: float
    sum_x: float
    sum_x2: float
    sum_xy: float


@dataclass(frozen=True)
class CupedResult(JsonResult):
    theta: float
    adjusted: dict[str, SampleMoments]
    variance_reduction: float


def cuped_adjust(sums: Mapping[str, CupedSums]) -> CupedResult:
    """CUPED (Deng, Xu, Kohavi, Walker 2013): y_adj = y - theta (x - mean x over all variants),
    theta = cov(x, y) / var(x) from within-variant (pooled) moments, so a treatment effect on
    y does not leak into theta. Adjusted means stay unbiased for the difference (x is measured
    before assignment); the adjusted variances are var(y) - 2 theta cov(x, y) + theta^2 var(x).
    `variance_reduction` is 1 - (sum of adjusted variances / sum of raw variances)."""
    groups = [s for s in sums.values() if s.n > 1]
    if not groups:
        raise ValueError("CUPED needs at least two users in some variant")
    n_all = sum(s.n for s in sums.values())
    x_all = sum(s.sum_x for s in sums.values()) / n_all
    sxx = sum(s.sum_x2 - s.sum_x**2 / s.n for s in groups)
    sxy = sum(s.sum_xy - s.sum_x * s.sum_y / s.n for s in groups)
    theta = sxy / sxx if sxx > 0 else 0.0
    adjusted: dict[str, SampleMoments] = {}
    raw_total = adjusted_total = 0.0
    for key, s in sums.items():
        if s.n == 0:
            adjusted[key] = SampleMoments(0, math.nan, 0.0)
            continue
        my, mx = s.sum_y / s.n, s.sum_x / s.n
        d = max(s.n - 1, 1)
        var_y = max(s.sum_y2 - s.n * my * my, 0.0) / d
        var_x = max(s.sum_x2 - s.n * mx * mx, 0.0) / d
        cov = (s.sum_xy - s.n * mx * my) / d
        var_adj = max(var_y - 2 * theta * cov + theta * theta * var_x, 0.0)
        adjusted[key] = SampleMoments(s.n, my - theta * (mx - x_all), var_adj)
        raw_total += var_y
        adjusted_total += var_adj
    reduction = 1 - adjusted_total / raw_total if raw_total > 0 else 0.0
    return CupedResult(theta, adjusted, reduction)

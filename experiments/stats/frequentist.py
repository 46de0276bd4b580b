"""Fixed-horizon (classical) estimates and tests of one variant against control.

- Conversion rate: Wilson score interval (good coverage at small n and near 0 or 1, where the
  Wald interval undercovers).
- Absolute lift of rates: Newcombe's hybrid score interval (method 10 of Newcombe 1998), built
  from the two Wilson intervals, consistent with them.
- Relative lift of rates: Katz log interval of the risk ratio, minus 1.
- Two-proportion z-test with the pooled standard error (equals the Pearson chi-square test
  without continuity correction on the 2x2 table).
- Means (revenue per user): Welch t-test and interval with Welch-Satterthwaite degrees of
  freedom; relative lift by the delta method on the ratio of means.

All p-values are two-sided. These are valid for a single look at a planned sample size; for
daily peeking use `sequential.py`.
"""

import math
from dataclasses import dataclass

from scipy import stats as sps

from experiments.stats.base import BinomialStats, Interval, JsonResult, SampleMoments


@dataclass(frozen=True)
class TestResult(JsonResult):
    statistic: float
    p_value: float
    df: float | None = None


def _z(alpha: float) -> float:
    return float(sps.norm.ppf(1 - alpha / 2))


def wilson_interval(stats: BinomialStats, *, alpha: float = 0.05) -> Interval:
    """Wilson score interval of the conversion rate (no continuity correction)."""
    n, p = stats.n, stats.rate
    if n == 0:
        return Interval(math.nan, math.nan, math.nan)
    z = _z(alpha)
    z2n = z * z / n
    centre = (p + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * math.sqrt(p * (1 - p) / n + z2n / (4 * n))
    return Interval(p, max(centre - half, 0.0), min(centre + half, 1.0))


def rate_difference_interval(
    control: BinomialStats, treatment: BinomialStats, *, alpha: float = 0.05
) -> Interval:
    """Newcombe's hybrid score interval for treatment rate - control rate."""
    if control.n == 0 or treatment.n == 0:
        return Interval(math.nan, math.nan, math.nan)
    c, t = wilson_interval(control, alpha=alpha), wilson_interval(treatment, alpha=alpha)
    d = t.estimate - c.estimate
    lower = d - math.hypot(t.estimate - t.lower, c.upper - c.estimate)
    upper = d + math.hypot(t.upper - t.estimate, c.estimate - c.lower)
    return Interval(d, lower, upper)


def rate_relative_lift_interval(
    control: BinomialStats, treatment: BinomialStats, *, alpha: float = 0.05
) -> Interval:
    """treatment rate / control rate - 1 with the Katz log interval; NaN bounds when either arm
    has no conversions (the log ratio is undefined), NaN estimate when control has none."""
    if control.n == 0 or treatment.n == 0 or control.successes == 0:
        return Interval(math.nan, math.nan, math.nan)
    ratio = treatment.rate / control.rate
    if treatment.successes == 0:
        return Interval(ratio - 1, math.nan, math.nan)
    se = math.sqrt(
        1 / treatment.successes - 1 / treatment.n + 1 / control.successes - 1 / control.n
    )
    z = _z(alpha)
    return Interval(ratio - 1, ratio * math.exp(-z * se) - 1, ratio * math.exp(z * se) - 1)


def two_proportion_ztest(control: BinomialStats, treatment: BinomialStats) -> TestResult:
    """Pooled two-proportion z-test of equal rates; z > 0 when treatment converts better."""
    n0, n1 = control.n, treatment.n
    if n0 == 0 or n1 == 0:
        return TestResult(math.nan, math.nan)
    pooled = (control.successes + treatment.successes) / (n0 + n1)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n0 + 1 / n1))
    if se == 0:
        return TestResult(0.0, 1.0)
    z = (treatment.rate - control.rate) / se
    return TestResult(z, float(2 * sps.norm.sf(abs(z))))


def _welch_parts(control: SampleMoments, treatment: SampleMoments) -> tuple[float, float, float]:
    """(difference of means, its standard error, Welch-Satterthwaite df)."""
    v0, v1 = control.variance / control.n, treatment.variance / treatment.n
    se = math.sqrt(v0 + v1)
    denominator = v0 * v0 / (control.n - 1) + v1 * v1 / (treatment.n - 1)
    df = (v0 + v1) ** 2 / denominator if denominator > 0 else math.inf
    return treatment.mean - control.mean, se, df


def welch_ttest(control: SampleMoments, treatment: SampleMoments) -> TestResult:
    """Welch's unequal-variance t-test from sufficient statistics (equals
    scipy.stats.ttest_ind(control, treatment, equal_var=False) with the sign flipped so that
    t > 0 when treatment is higher)."""
    if control.n < 2 or treatment.n < 2:
        return TestResult(math.nan, math.nan)
    diff, se, df = _welch_parts(control, treatment)
    if se == 0:
        return (
            TestResult(0.0, 1.0, df)
            if diff == 0
            else TestResult(math.copysign(math.inf, diff), 0.0, df)
        )
    t = diff / se
    return TestResult(t, float(2 * sps.t.sf(abs(t), df)), df)


def mean_difference_interval(
    control: SampleMoments, treatment: SampleMoments, *, alpha: float = 0.05
) -> Interval:
    """Welch interval for treatment mean - control mean."""
    if control.n < 2 or treatment.n < 2:
        return Interval(math.nan, math.nan, math.nan)
    diff, se, df = _welch_parts(control, treatment)
    half = float(sps.t.ppf(1 - alpha / 2, df)) * se if se > 0 else 0.0
    return Interval(diff, diff - half, diff + half)


def mean_relative_lift_interval(
    control: SampleMoments, treatment: SampleMoments, *, alpha: float = 0.05
) -> Interval:
    """treatment mean / control mean - 1 with a delta-method interval (control mean must be
    non-zero; the ratio's normal approximation needs a control mean well away from 0)."""
    if control.n < 2 or treatment.n < 2 or control.mean == 0:
        return Interval(math.nan, math.nan, math.nan)
    ratio = treatment.mean / control.mean
    se = math.sqrt(
        treatment.variance / treatment.n / control.mean**2
        + ratio**2 * control.variance / control.n / control.mean**2
    )
    z = _z(alpha)
    return Interval(ratio - 1, ratio - 1 - z * se, ratio - 1 + z * se)

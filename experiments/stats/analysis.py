"""All the statistics of one metric of an experiment, and the plain-language decision.

`analyze_conversions` / `analyze_means` take the per-variant sufficient statistics (one
GROUP BY in the database), compare every variant with control and return an `Analysis` whose
`to_dict()` is the JSON of the results API. `decision` turns it into a verdict a marketer can
act on. Rules, in order:

1. Sample ratio mismatch (p < 0.001 against the configured weights): no verdict at all.
2. Fewer than `min_users` (150) users in any variant: keep running.
3. A winner needs all three: the always-valid (mSPRT) p-value, Holm-adjusted over the
   variants, below alpha; probability to beat control >= `win_probability`; expected loss at
   most `max_expected_loss` x the control mean. The sequential test is the gate because the
   page is looked at every day; the Bayesian figures are what the sentence reports.
4. Every variant significantly worse than control (same gate, other direction): control wins.
5. Planned sample reached (power calculation for a relative `mde` at `power`, alpha split
   Bonferroni over the variants) and nothing significant: no detectable difference.
6. Otherwise keep running, with the users per variant still needed to reach the planned size.

Multiple comparisons: p-values are Holm-adjusted (step-down, family-wise error); intervals
use the Bonferroni level alpha / m, since Holm gives no intervals. With one variant both are
the plain per-comparison figures.
"""

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from experiments.stats import bayesian, design, frequentist, sequential
from experiments.stats.base import BinomialStats, Interval, JsonResult, SampleMoments
from experiments.stats.frequentist import TestResult
from experiments.stats.sequential import SequentialResult

CONVERSION = "conversion"
MEAN = "mean"


@dataclass(frozen=True)
class AnalysisConfig:
    """Per-experiment settings. `mde` is relative to the control mean (0.05 = a 5% lift).

    `tau2` is the mSPRT mixture variance on the difference scale. None takes
    (tau_relative x control mean)^2 at each look, which settles once control has a few hundred
    users (set tau2 from the baseline to fix it before the experiment starts). The default
    scale is 25% of the control mean, the size of the lifts marketing tests usually look for:
    a mixture narrower than the true effect delays detection a lot (the evidence grows like
    r (z^2 - 1) / 2 with r = tau2 / V), a wider one costs only log(1 + r) / 2. Worked figures:
    5% against 15% conversion with 600 users each gives a sequential p of 0.27 at 10% but
    0.003 at 25%; a 10% lift (5% against 5.5%) with 50,000 users each gives 0.011 at 10% and
    0.018 at 25%."""

    alpha: float = 0.05
    power: float = 0.8
    mde: float = 0.05
    tau2: float | None = None
    tau_relative: float = 0.25
    win_probability: float = 0.95
    max_expected_loss: float = 0.01
    min_users: int = design.MIN_USERS_PER_VARIANT
    srm_threshold: float = design.SRM_THRESHOLD
    prior: tuple[float, float] = (1, 1)


@dataclass(frozen=True)
class VariantSummary(JsonResult):
    """A variant on its own: users and the metric with its interval (Wilson for rates, t for
    means)."""

    variant: str
    n: int
    value: Interval


@dataclass(frozen=True)
class Comparison(JsonResult):
    """One variant against control. `expected_loss` is what shipping the variant costs if it
    is in fact worse; `expected_loss_control` what keeping control costs if the variant is
    better (metric units: rate points or currency per user)."""

    variant: str
    absolute_lift: Interval
    relative_lift: Interval
    test: TestResult
    p_value_adjusted: float
    sequential: SequentialResult
    sequential_p_adjusted: float
    prob_beat_control: float
    expected_loss: float
    expected_loss_control: float


@dataclass(frozen=True)
class Decision(JsonResult):
    """`code` is one of sample_ratio_mismatch, keep_running, winner, control_wins,
    no_difference; `message` is the sentence shown on the results page."""

    code: str
    message: str
    winner: str | None = None
    probability: float | None = None
    expected_loss: float | None = None
    users_needed_per_variant: int | None = None


@dataclass(frozen=True)
class Analysis(JsonResult):
    metric: str
    control: str
    alpha: float
    interval_alpha: float
    correction: str
    variants: list[VariantSummary]
    comparisons: list[Comparison]
    srm: design.SrmResult | None
    required_users_per_variant: int | None
    decision: Decision = field(default_factory=lambda: Decision("keep_running", ""))


def _check_inputs(stats: Mapping, control: str) -> list[str]:
    if control not in stats:
        raise ValueError(f"control {control!r} is not one of the variants")
    if len(stats) < 2:
        raise ValueError("an experiment needs a control and at least one variant")
    return [k for k in stats if k != control]


def _srm(counts: dict[str, int], weights: Mapping[str, float] | None, config: AnalysisConfig):
    if weights is None:
        return None
    keys = list(counts)
    return design.sample_ratio_mismatch(
        [counts[k] for k in keys], [weights[k] for k in keys], threshold=config.srm_threshold
    )


def _tau2(config: AnalysisConfig, control_mean: float) -> float:
    if config.tau2 is not None:
        return config.tau2
    tau = config.tau_relative * abs(control_mean) if math.isfinite(control_mean) else 0.0
    return tau * tau if tau > 0 else 1e-6


def _assemble(
    metric: str,
    control: str,
    others: list[str],
    variants: list[VariantSummary],
    rows: list[dict],
    srm: design.SrmResult | None,
    required: int | None,
    config: AnalysisConfig,
    interval_alpha: float,
) -> Analysis:
    p_adj = design.holm_adjust([r["test"].p_value for r in rows])
    seq_adj = design.holm_adjust([r["sequential"].p_value for r in rows])
    comparisons = [
        Comparison(variant=key, p_value_adjusted=pa, sequential_p_adjusted=sa, **row)
        for key, row, pa, sa in zip(others, rows, p_adj, seq_adj, strict=True)
    ]
    analysis = Analysis(
        metric=metric,
        control=control,
        alpha=config.alpha,
        interval_alpha=interval_alpha,
        correction="holm" if len(others) > 1 else "none",
        variants=variants,
        comparisons=comparisons,
        srm=srm,
        required_users_per_variant=required,
    )
    return Analysis(**{**analysis.__dict__, "decision": decision(analysis, config=config)})


@dataclass(frozen=True)
class _Methods:
    """The methods of one kind of metric, so rates and means share one analysis loop."""

    metric: str
    summary: Callable[[Any, float], Interval]
    difference: Callable[..., Interval]
    relative: Callable[..., Interval]
    test: Callable[[Any, Any], TestResult]
    prob_beat: Callable[[Any, Any], float]
    loss: Callable[[Any, Any], float]
    moments: Callable[[Any], SampleMoments]
    centre: Callable[[Any], float]
    required: Callable[[Any, float, AnalysisConfig], int | None]


def _rate_required(c: BinomialStats, alpha: float, config: AnalysisConfig) -> int | None:
    if not (0 < c.rate < 1 and c.rate * (1 + config.mde) < 1):
        return None
    return design.sample_size_proportions(
        baseline=c.rate, mde=c.rate * config.mde, alpha=alpha, power=config.power
    )


def _mean_summary(s: SampleMoments, alpha: float) -> Interval:
    if s.n < 2:
        return Interval(s.mean, math.nan, math.nan)
    half = float(frequentist.sps.t.ppf(1 - alpha / 2, s.n - 1)) * s.standard_error
    return Interval(s.mean, s.mean - half, s.mean + half)


def _mean_required(c: SampleMoments, alpha: float, config: AnalysisConfig) -> int | None:
    if c.n < 2 or c.variance <= 0 or c.mean == 0:
        return None
    return design.sample_size_means(
        std=math.sqrt(c.variance), mde=abs(c.mean) * config.mde, alpha=alpha, power=config.power
    )


def _rate_methods(prior: tuple[float, float]) -> _Methods:
    return _Methods(
        metric=CONVERSION,
        summary=lambda s, alpha: frequentist.wilson_interval(s, alpha=alpha),
        difference=frequentist.rate_difference_interval,
        relative=frequentist.rate_relative_lift_interval,
        test=frequentist.two_proportion_ztest,
        prob_beat=partial(bayesian.beta_prob_beat, prior=prior),
        loss=partial(bayesian.beta_expected_loss, prior=prior),
        moments=BinomialStats.moments,
        centre=lambda s: s.rate,
        required=_rate_required,
    )


MEAN_METHODS = _Methods(
    metric=MEAN,
    summary=_mean_summary,
    difference=frequentist.mean_difference_interval,
    relative=frequentist.mean_relative_lift_interval,
    test=frequentist.welch_ttest,
    prob_beat=bayesian.means_prob_beat,
    loss=bayesian.means_expected_loss,
    moments=lambda s: s,
    centre=lambda s: s.mean,
    required=_mean_required,
)


def _analyze(
    methods: _Methods,
    stats: Mapping[str, Any],
    *,
    control: str,
    weights: Mapping[str, float] | None,
    config: AnalysisConfig,
    previous_sequential_p: Mapping[str, float] | None,
) -> Analysis:
    others = _check_inputs(stats, control)
    alpha = config.alpha / len(others)
    c = stats[control]
    variants = [VariantSummary(k, s.n, methods.summary(s, alpha)) for k, s in stats.items()]
    tau2 = _tau2(config, methods.centre(c))
    previous = previous_sequential_p or {}
    rows = []
    for key in others:
        t = stats[key]
        seq = sequential.msprt_test(
            methods.moments(c),
            methods.moments(t),
            tau2=tau2,
            alpha=alpha,
            previous_p=previous.get(key, 1.0),
        )
        rows.append(
            {
                "absolute_lift": methods.difference(c, t, alpha=alpha),
                "relative_lift": methods.relative(c, t, alpha=alpha),
                "test": methods.test(c, t),
                "sequential": seq,
                "prob_beat_control": methods.prob_beat(c, t),
                "expected_loss": methods.loss(c, t),
                "expected_loss_control": methods.loss(t, c),
            }
        )
    srm = _srm({k: s.n for k, s in stats.items()}, weights, config)
    required = methods.required(c, alpha, config)
    return _assemble(methods.metric, control, others, variants, rows, srm, required, config, alpha)


def analyze_conversions(
    stats: Mapping[str, BinomialStats],
    *,
    control: str,
    weights: Mapping[str, float] | None = None,
    config: AnalysisConfig = AnalysisConfig(),  # noqa: B008 (frozen, never mutated)
    previous_sequential_p: Mapping[str, float] | None = None,
) -> Analysis:
    """Every statistic of a conversion metric. `stats` maps variant key -> (users, converters),
    in display order; `weights` are the configured traffic weights (for the SRM check; omit for
    bandits, whose weights change); `previous_sequential_p` the always-valid p-values of the
    last look (they only ever decrease)."""
    return _analyze(
        _rate_methods(config.prior),
        stats,
        control=control,
        weights=weights,
        config=config,
        previous_sequential_p=previous_sequential_p,
    )


def analyze_means(
    stats: Mapping[str, SampleMoments],
    *,
    control: str,
    weights: Mapping[str, float] | None = None,
    config: AnalysisConfig = AnalysisConfig(),  # noqa: B008 (frozen, never mutated)
    previous_sequential_p: Mapping[str, float] | None = None,
) -> Analysis:
    """Every statistic of a per-user mean (revenue per user, or a CUPED-adjusted metric from
    `design.cuped_adjust`). Build `stats` with `SampleMoments.from_sums(n=, total=, total_sq=)`.
    Bayesian figures use the normal approximation of each mean."""
    return _analyze(
        MEAN_METHODS,
        stats,
        control=control,
        weights=weights,
        config=config,
        previous_sequential_p=previous_sequential_p,
    )


def _percent(p: float) -> str:
    if p > 0.99:
        return "over 99%"
    return f"{math.floor(p * 100)}%"


def _amount(value: float, metric: str) -> str:
    """Rate points as a percentage (0.0002 -> '0.02%'), means with two decimals."""
    if metric == CONVERSION:
        return "<0.01%" if 0 < value < 0.00005 else f"{value * 100:.2f}%"
    return "<0.01" if 0 < value < 0.005 else f"{value:.2f}"


def _keep_running(analysis: Analysis, config: AnalysisConfig, reason: str = "") -> Decision:
    n_min = min(v.n for v in analysis.variants)
    target = max(config.min_users, analysis.required_users_per_variant or 0)
    needed = max(target - n_min, 0)
    if needed:
        message = (
            f"Keep running: about {needed:,} more users per variant needed to detect a "
            f"{config.mde:.0%} relative lift with {config.power:.0%} power"
        )
    else:
        message = "Keep running: no variant is conclusive yet"
    return Decision("keep_running", message + reason, users_needed_per_variant=needed or None)


def decision(analysis: Analysis, *, config: AnalysisConfig = AnalysisConfig()) -> Decision:  # noqa: B008
    """The verdict for an `Analysis` (rules in the module docstring)."""
    if analysis.srm is not None and analysis.srm.mismatch:
        return Decision(
            "sample_ratio_mismatch",
            f"Sample ratio mismatch (p = {analysis.srm.p_value:.1g}): traffic does not match the "
            "configured weights; fix assignment before reading these results",
        )
    if min(v.n for v in analysis.variants) < config.min_users:
        return _keep_running(
            analysis, config, f" (no verdict before {config.min_users} users per variant)"
        )
    control_mean = next(
        v.value.estimate for v in analysis.variants if v.variant == analysis.control
    )
    loss_limit = config.max_expected_loss * abs(control_mean)
    significant = [c for c in analysis.comparisons if c.sequential_p_adjusted < config.alpha]
    winners = [
        c
        for c in significant
        if c.absolute_lift.estimate > 0
        and c.prob_beat_control >= config.win_probability
        and c.expected_loss <= loss_limit
    ]
    if winners:
        best = max(winners, key=lambda c: (c.prob_beat_control, c.absolute_lift.estimate))
        return Decision(
            "winner",
            f"{best.variant} wins with {_percent(best.prob_beat_control)} probability; "
            f"expected loss {_amount(best.expected_loss, analysis.metric)}",
            winner=best.variant,
            probability=best.prob_beat_control,
            expected_loss=best.expected_loss,
        )
    losers = [c for c in significant if c.absolute_lift.estimate < 0]
    if len(losers) == len(analysis.comparisons):
        worst = min(losers, key=lambda c: c.prob_beat_control)
        p_control = 1 - max(c.prob_beat_control for c in losers)
        return Decision(
            "control_wins",
            f"{analysis.control} wins: every variant does worse "
            f"({worst.variant} loses with {_percent(1 - worst.prob_beat_control)} probability)",
            winner=analysis.control,
            probability=p_control,
            expected_loss=max(c.expected_loss_control for c in losers),
        )
    required = analysis.required_users_per_variant
    if required is not None and min(v.n for v in analysis.variants) >= required:
        return Decision(
            "no_difference",
            f"No detectable difference: the planned {required:,} users per variant are in and no "
            f"variant moved the metric by {config.mde:.0%} or more",
        )
    return _keep_running(analysis, config)

"""Experiment statistics, Django-free: every function takes sufficient statistics (counts,
sums, sums of squares) and returns numbers or frozen dataclasses with `to_dict()`.

Entry points for the Django layer: `analyze_conversions`, `analyze_means` (which call
`decision`), `cuped_adjust`, `sample_ratio_mismatch`, `sample_size_proportions`,
`sample_size_means`. The modules hold the individual methods:
`frequentist` (Wilson, Newcombe, Katz, z-test, Welch), `bayesian` (Beta-Binomial exact,
normal approximation), `sequential` (mSPRT), `design` (SRM, Holm, power, CUPED).
"""

from experiments.stats.analysis import (
    Analysis,
    AnalysisConfig,
    Comparison,
    Decision,
    VariantSummary,
    analyze_conversions,
    analyze_means,
    decision,
)
from experiments.stats.base import BinomialStats, Interval, SampleMoments
from experiments.stats.design import (
    CupedResult,
    CupedSums,
    SrmResult,
    cuped_adjust,
    holm_adjust,
    sample_ratio_mismatch,
    sample_size_means,
    sample_size_proportions,
)

__all__ = [
    "Analysis",
    "AnalysisConfig",
    "BinomialStats",
    "Comparison",
    "CupedResult",
    "CupedSums",
    "Decision",
    "Interval",
    "SampleMoments",
    "SrmResult",
    "VariantSummary",
    "analyze_conversions",
    "analyze_means",
    "cuped_adjust",
    "decision",
    "holm_adjust",
    "sample_ratio_mismatch",
    "sample_size_means",
    "sample_size_proportions",
]

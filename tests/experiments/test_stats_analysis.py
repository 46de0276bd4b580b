"""The per-metric analysis and its plain-language decision. No database."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.stats import (
    AnalysisConfig,
    BinomialStats,
    SampleMoments,
    analyze_conversions,
    analyze_means,
    sample_size_proportions,
)
from experiments.stats.design import holm_adjust
from experiments.stats.frequentist import two_proportion_ztest

ROOT = Path(__file__).resolve().parents[2]


def test_clear_winner_is_named_with_probability_and_expected_loss():
    analysis = analyze_conversions(
        {"A": BinomialStats(6000, 300), "B": BinomialStats(6000, 400)},
        control="A",
        weights={"A": 1, "B": 1},
    )
    decision = analysis.decision
    assert decision.code == "winner"
    assert decision.winner == "B"
    assert decision.message == "B wins with over 99% probability; expected loss <0.01%"
    comparison = analysis.comparisons[0]
    assert decision.probability == comparison.prob_beat_control > 0.9999
    assert decision.expected_loss == comparison.expected_loss < 1e-6
    assert comparison.sequential_p_adjusted < 0.05
    assert comparison.absolute_lift.estimate == pytest.approx(1 / 60)
    assert analysis.srm is not None
    assert not analysis.srm.mismatch


def test_significant_fixed_horizon_p_is_not_enough_while_peeking():
    """z-test p = 0.007 and 99.6% to beat control, but the always-valid p-value is 0.12:
    on a page looked at daily that is not yet a winner."""
    analysis = analyze_conversions(
        {"A": BinomialStats(20_000, 1000), "B": BinomialStats(20_000, 1120)}, control="A"
    )
    comparison = analysis.comparisons[0]
    assert comparison.test.p_value < 0.01
    assert comparison.prob_beat_control > 0.99
    assert comparison.sequential.p_value > 0.05
    assert analysis.decision.code == "keep_running"
    wider = analyze_conversions(
        {"A": BinomialStats(20_000, 1000), "B": BinomialStats(20_000, 1120)},
        control="A",
        config=AnalysisConfig(alpha=0.2),
    )
    assert wider.decision.code == "winner"


def test_sample_ratio_mismatch_blocks_any_verdict():
    analysis = analyze_conversions(
        {"A": BinomialStats(5000, 250), "B": BinomialStats(5600, 400)},
        control="A",
        weights={"A": 1, "B": 1},
    )
    assert analysis.decision.code == "sample_ratio_mismatch"
    assert analysis.decision.winner is None
    assert "fix assignment" in analysis.decision.message


def test_no_verdict_before_150_users_per_variant():
    analysis = analyze_conversions(
        {"A": BinomialStats(149, 5), "B": BinomialStats(160, 60)}, control="A"
    )
    decision = analysis.decision
    assert decision.code == "keep_running"
    assert decision.winner is None
    assert decision.message.endswith("(no verdict before 150 users per variant)")
    assert decision.users_needed_per_variant == analysis.required_users_per_variant - 149


def test_keep_running_reports_users_needed_from_power_calculation():
    analysis = analyze_conversions(
        {"A": BinomialStats(3000, 150), "B": BinomialStats(3000, 160)}, control="A"
    )
    required = sample_size_proportions(baseline=0.05, mde=0.05 * 0.05)
    assert analysis.required_users_per_variant == required
    assert analysis.decision.code == "keep_running"
    assert analysis.decision.users_needed_per_variant == required - 3000
    assert analysis.decision.message == (
        f"Keep running: about {required - 3000:,} more users per variant needed to detect a "
        "5% relative lift with 80% power"
    )


def test_no_difference_once_planned_sample_is_in():
    analysis = analyze_conversions(
        {"A": BinomialStats(200_000, 10_000), "B": BinomialStats(200_000, 10_020)}, control="A"
    )
    assert analysis.required_users_per_variant < 200_000
    assert analysis.decision.code == "no_difference"
    assert "no variant moved the metric by 5% or more" in analysis.decision.message


def test_control_wins_when_every_variant_is_worse():
    analysis = analyze_conversions(
        {
            "A": BinomialStats(8000, 480),
            "B": BinomialStats(8000, 330),
            "C": BinomialStats(8000, 320),
        },
        control="A",
    )
    assert analysis.decision.code == "control_wins"
    assert analysis.decision.winner == "A"
    assert analysis.decision.message == (
        "A wins: every variant does worse (C loses with over 99% probability)"
    )


def test_several_variants_use_holm_p_values_and_bonferroni_intervals():
    stats = {
        "control": BinomialStats(5000, 250),
        "b": BinomialStats(5000, 290),
        "c": BinomialStats(5000, 262),
    }
    analysis = analyze_conversions(stats, control="control")
    assert analysis.correction == "holm"
    assert analysis.interval_alpha == 0.025
    raw = [two_proportion_ztest(stats["control"], stats[k]).p_value for k in ("b", "c")]
    assert [c.p_value_adjusted for c in analysis.comparisons] == pytest.approx(holm_adjust(raw))
    assert [c.variant for c in analysis.comparisons] == ["b", "c"]
    assert [v.variant for v in analysis.variants] == ["control", "b", "c"]


def test_previous_sequential_p_value_is_carried_forward():
    stats = {"A": BinomialStats(3000, 150), "B": BinomialStats(3000, 160)}
    fresh = analyze_conversions(stats, control="A")
    carried = analyze_conversions(stats, control="A", previous_sequential_p={"B": 0.01})
    assert fresh.comparisons[0].sequential.p_value > 0.01
    assert carried.comparisons[0].sequential.p_value == 0.01


def test_revenue_per_user_analysis_and_json():
    stats = {
        "A": SampleMoments.from_sums(n=4000, total=40_000.0, total_sq=4000 * (100 + 400)),
        "B": SampleMoments.from_sums(n=4000, total=46_000.0, total_sq=4000 * (11.5**2 + 420)),
    }
    analysis = analyze_means(stats, control="A", weights={"A": 1, "B": 1})
    assert analysis.metric == "mean"
    assert analysis.decision.code == "winner"
    assert analysis.decision.message == "B wins with over 99% probability; expected loss <0.01"
    payload = json.loads(json.dumps(analysis.to_dict(), allow_nan=False))
    assert payload["comparisons"][0]["test"]["df"] == pytest.approx(7993, abs=5)
    assert payload["decision"]["winner"] == "B"
    assert payload["variants"][0] == {
        "variant": "A",
        "n": 4000,
        "value": payload["variants"][0]["value"],
    }
    assert payload["variants"][0]["value"]["estimate"] == 10.0


def test_unknown_control_is_rejected():
    with pytest.raises(ValueError, match="control 'X'"):
        analyze_conversions({"A": BinomialStats(10, 1), "B": BinomialStats(10, 2)}, control="X")


def test_algorithm_modules_import_without_django():
    """Benchmarks and notebooks use these modules with no settings and no database."""
    code = (
        "import sys, experiments.stats, experiments.bandits;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"

"""The pure assignment rules: deterministic, split as configured, independent hashes."""

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from scipy.stats import chi2_contingency, chisquare

from campaigns.dispatch_rules import in_global_control
from experiments.assignment import (
    GLOBAL_CONTROL,
    HOLDOUT,
    NOT_IN_AUDIENCE,
    NOT_RUNNING,
    TRAFFIC,
    ExperimentConfig,
    VariantConfig,
    decide,
    shares,
)

N = 100_000


def config(weights=(1, 1), *, salt="s1", running=True, traffic=100.0, holdout=0.0, segment=None):
    split = shares(list(weights))
    return ExperimentConfig(
        id=1,
        key="banner",
        salt=salt,
        running=running,
        traffic_percent=traffic,
        holdout_percent=holdout,
        audience_segment_id=segment,
        adaptive=False,
        variants=tuple(
            VariantConfig(id=10 + i, key=f"v{i}", share=s, is_control=i == 0)
            for i, s in enumerate(split)
        ),
    )


def everyone(segment_id, customer_id):
    return True


def assign(cfg, customer, *, gc=0.0, in_audience=everyone):
    return decide(cfg, customer, global_control_percent=gc, in_audience=in_audience)


def test_same_customer_same_variant_every_time_and_in_every_process():
    cfg = config((1, 1, 1))
    first = [assign(cfg, f"c{i}").variant.key for i in range(2_000)]
    again = [assign(config((1, 1, 1)), f"c{i}").variant.key for i in range(2_000)]
    assert first == again
    # Another interpreter with another hash seed (another server) decides the same.
    script = (
        "from tests.experiments.test_assignment import assign, config;"
        "print(','.join(assign(config((1, 1, 1)), f'c{i}').variant.key for i in range(2000)))"
    )
    other = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONHASHSEED": "12345"},
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=True,
    )
    assert other.stdout.strip().split(",") == first


@pytest.mark.parametrize("weights", [(1, 1), (1, 2, 1), (5, 3, 1, 1)])
def test_split_matches_the_weights_chi_square_on_100k_customers(weights):
    cfg = config(weights)
    counts = Counter(assign(cfg, f"cust-{i}").variant.key for i in range(N))
    observed = [counts[f"v{i}"] for i in range(len(weights))]
    expected = [N * s for s in shares(list(weights))]
    assert sum(observed) == N
    assert chisquare(observed, expected).pvalue > 0.001


def test_variant_hash_is_independent_of_traffic_and_of_other_experiments():
    a, b = config((1, 1), salt="a"), config((1, 1), salt="b")
    table = Counter(
        (assign(a, f"c{i}").variant.key, assign(b, f"c{i}").variant.key) for i in range(20_000)
    )
    grid = [[table[("v0", "v0")], table[("v0", "v1")]], [table[("v1", "v0")], table[("v1", "v1")]]]
    assert chi2_contingency(grid).pvalue > 0.001
    half = config((1, 1), traffic=50)
    in_traffic = Counter(
        assign(a, f"c{i}").variant.key for i in range(20_000) if not assign(half, f"c{i}").reason
    )
    assert chisquare([in_traffic["v0"], in_traffic["v1"]]).pvalue > 0.001


def test_traffic_and_holdout_shares():
    cfg = config(traffic=30, holdout=10)
    reasons = Counter(assign(cfg, f"c{i}").reason for i in range(N))
    assert abs(reasons[TRAFFIC] / N - 0.70) < 0.01
    assert abs(reasons[HOLDOUT] / N - 0.03) < 0.003
    assert abs(reasons[""] / N - 0.27) < 0.01


def test_holdout_has_no_variant_and_its_propensity():
    cfg = config((3, 1), holdout=20)
    decisions = [assign(cfg, f"c{i}") for i in range(500)]
    held = [d for d in decisions if d.reason == HOLDOUT]
    assert held
    assert all(d.variant is None and d.propensity == pytest.approx(0.2) for d in held)
    assert all(d.logged for d in held)
    shown = {d.variant.key: d.propensity for d in decisions if not d.reason}
    assert shown == {"v0": pytest.approx(0.8 * 0.75), "v1": pytest.approx(0.8 * 0.25)}


def test_zero_weight_variant_is_never_chosen():
    cfg = config((1, 0, 1))
    assert {assign(cfg, f"c{i}").variant.key for i in range(5_000)} == {"v0", "v2"}


def test_global_control_is_the_campaigns_group_and_overrides_everything():
    cfg = config()
    ids = [f"c{i}" for i in range(5_000)]
    excluded = {c for c in ids if assign(cfg, c, gc=5).reason == GLOBAL_CONTROL}
    assert excluded == {c for c in ids if in_global_control(external_id=c, percent=5)}
    assert 200 <= len(excluded) <= 300
    other = config(salt="another experiment")
    assert {c for c in ids if assign(other, c, gc=5).reason == GLOBAL_CONTROL} == excluded
    assert all(not assign(cfg, c, gc=5).logged for c in excluded)


def test_not_running_and_audience_checks():
    asked = []

    def members_only(segment_id, customer_id):
        asked.append((segment_id, customer_id))
        return customer_id == "in"

    assert assign(config(running=False), "in").reason == NOT_RUNNING
    cfg = config(segment=4)
    assert assign(cfg, "out", in_audience=members_only).reason == NOT_IN_AUDIENCE
    assert assign(cfg, "in", in_audience=members_only).reason == ""
    assert asked == [(4, "out"), (4, "in")]
    # The audience lookup (a query) is skipped for customers a hash already excluded.
    assert assign(config(segment=4), "in", gc=100, in_audience=members_only).reason == (
        GLOBAL_CONTROL
    )
    assert len(asked) == 2

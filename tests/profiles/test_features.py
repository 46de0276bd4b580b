from datetime import UTC, datetime, timedelta

import pytest

from profiles.features import (
    FeatureConfig,
    FeatureEvent,
    features_apply,
    features_drift,
    features_empty,
    features_summary,
)

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
CONFIG = FeatureConfig(last_n=3, half_life_days=10.0)


def _history():
    def at(minutes):
        return T0 + timedelta(minutes=minutes)

    return [
        FeatureEvent(at(0), "view", "i1", "shoes", channel="web"),
        FeatureEvent(at(5), "view", "i2", "hats", channel="web"),
        FeatureEvent(at(10), "add_to_cart", "i1", "shoes", channel="web"),
        FeatureEvent(at(12), "purchase", "i1", "shoes", value=50.0, channel="web"),
        FeatureEvent(at(60 * 24 * 10), "email_open", channel="email"),
        FeatureEvent(at(60 * 24 * 10 + 1), "view", "i3", "bags", channel="app"),
        FeatureEvent(at(60 * 24 * 10 + 2), "view", "i2", "hats", channel="app"),
        FeatureEvent(at(60 * 24 * 10 + 3), "view", "i4", "bags", channel="app"),
        FeatureEvent(at(60 * 24 * 10 + 4), "purchase", "i4", "bags", value=30.5, channel="app"),
    ]


def test_counts_sessions_revenue_and_recent_items():
    s = features_apply(None, _history(), config=CONFIG)
    assert s["counts"] == {"view": 5, "add_to_cart": 1, "purchase": 2, "email_open": 1}
    assert s["sessions"] == 2
    assert s["orders"] == 2
    assert s["revenue"] == 80.5
    assert s["recent_views"] == ["i4", "i2", "i3"]
    assert s["recent_purchases"] == ["i4", "i1"]
    assert s["first_seen"] == T0.timestamp()
    assert s["last_at"]["purchase"] == (T0 + timedelta(minutes=60 * 24 * 10 + 4)).timestamp()
    assert s["hours"][9] == 9


def test_affinity_decays_with_the_half_life():
    s = features_apply(None, _history(), config=CONFIG)
    # shoes: 1 + 3 + 5 = 9 ten days (one half-life) before the last event, so about 4.5.
    assert s["affinity"]["shoes"] == pytest.approx(4.5, rel=1e-3)
    assert s["affinity"]["bags"] == pytest.approx(1 + 1 + 5, rel=1e-3)
    summary = features_summary(s, now=T0 + timedelta(days=20, minutes=4), config=CONFIG)
    assert summary["category_affinity"]["bags"] == pytest.approx(3.5, rel=1e-3)
    assert list(summary["category_affinity"]) == ["bags", "shoes", "hats"]


def test_summary_gives_rfm_aov_channel_and_hour():
    s = features_apply(None, _history(), config=CONFIG)
    now = T0 + timedelta(days=12)
    summary = features_summary(s, now=now, config=CONFIG)
    assert summary["frequency"] == 2
    assert summary["monetary"] == 80.5
    assert summary["average_order_value"] == 40.25
    assert summary["recency_days"] == pytest.approx(2.0 - 4 / 1440, abs=0.01)
    assert summary["preferred_channel"] == "web"
    assert summary["preferred_hour"] == 9


@pytest.mark.parametrize("split", [1, 3, 4, 8])
def test_batches_agree_with_a_full_recompute(split):
    history = _history()
    incremental = features_apply(None, history[:split], config=CONFIG)
    incremental = features_apply(incremental, history[split:], config=CONFIG)
    full = features_apply(None, history, config=CONFIG)
    assert features_drift(incremental, full) == {}


def test_drift_names_the_fields_that_differ():
    full = features_apply(None, _history(), config=CONFIG)
    broken = features_apply(None, _history()[:-1], config=CONFIG)
    assert set(features_drift(broken, full)) == {
        "counts",
        "last_at",
        "orders",
        "revenue",
        "recent_purchases",
        "affinity",
        "affinity_as_of",
        "channels",
        "hours",
        "last_seen",
    }


def test_apply_does_not_mutate_the_input_state():
    state = features_empty()
    features_apply(state, _history(), config=CONFIG)
    assert state == features_empty()

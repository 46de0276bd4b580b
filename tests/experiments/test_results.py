"""experiments.results against fixtures with known counts: the JSON matches experiments.stats
fed the same numbers; windows, holdout, CUPED, guardrails, IPW and the sequential looks."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.utils import timezone

from experiments import stats
from experiments.bandits import ipw_estimate
from experiments.models import Exposure, SequentialLook
from experiments.results import experiment_results, experiment_results_compute
from profiles.models import Customer, Event
from tests.experiments.factories import ExperimentFactory, VariantFactory
from tests.helpers import api_key_client

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)


def _customers(prefix: str, n: int) -> list[Customer]:
    return Customer.objects.bulk_create(
        Customer(external_id=f"{prefix}-{i:04d}", email=f"{prefix}{i}@example.com")
        for i in range(n)
    )


def _experiment(**kwargs):
    experiment = ExperimentFactory(key="checkout", status="running", **kwargs)
    control = VariantFactory(experiment=experiment, key="control", is_control=True)
    treatment = VariantFactory(experiment=experiment, key="b")
    return experiment, control, treatment


def _expose(experiment, variant, customers, *, at, propensity=0.5, purchases=0, value=None):
    """Exposes `customers`; the first `purchases` of them buy within the window."""
    Exposure.objects.bulk_create(
        Exposure(experiment=experiment, customer=c, variant=variant, exposed_at=at, propensity=p)
        for c, p in zip(customers, _cycle(propensity, len(customers)), strict=True)
    )
    Event.objects.bulk_create(
        Event(customer=c, type="purchase", occurred_at=at + timedelta(days=2), value=value)
        for c in customers[:purchases]
    )


def _cycle(value, n):
    return value if isinstance(value, list) else [value] * n


@pytest.fixture
def known():
    """300 exposed per variant; 30 and 45 convert within 7 days. Noise that must not count:
    purchases 8 days after exposure (outside the window), another event type, another
    experiment's exposure, and 20 held-out customers (2 convert)."""
    experiment, control, treatment = _experiment()
    a, b = _customers("a", 300), _customers("b", 300)
    at = NOW - timedelta(days=10)
    _expose(experiment, control, a, at=at, purchases=30)
    _expose(experiment, treatment, b, at=at + timedelta(days=1), purchases=45)
    Event.objects.bulk_create(
        [Event(customer=c, type="purchase", occurred_at=at + timedelta(days=8)) for c in a[50:90]]
        + [Event(customer=c, type="view", occurred_at=at + timedelta(hours=1)) for c in a[100:200]]
    )
    held = _customers("h", 20)
    Exposure.objects.bulk_create(
        Exposure(experiment=experiment, customer=c, variant=None, exposed_at=at, propensity=0.1)
        for c in held
    )
    Event.objects.bulk_create(
        Event(customer=c, type="purchase", occurred_at=at + timedelta(days=1)) for c in held[:2]
    )
    other = ExperimentFactory(key="other", status="running")
    _expose(other, VariantFactory(experiment=other, key="x"), a[:10], at=at)
    return experiment


def test_rates_and_p_values_match_stats_on_the_same_counts(known):
    results = experiment_results_compute(experiment=known)
    expected = stats.analyze_conversions(
        {"control": stats.BinomialStats(300, 30), "b": stats.BinomialStats(300, 45)},
        control="control",
        weights={"control": 1.0, "b": 1.0},
    ).to_dict()
    assert [(v["key"], v["users"], v["total"]) for v in results["variants"]] == [
        ("control", 300, 30.0),
        ("b", 300, 45.0),
    ]
    analysis = results["analysis"]
    assert analysis["variants"] == expected["variants"]
    assert analysis["comparisons"] == expected["comparisons"]
    assert analysis["srm"] == expected["srm"]
    assert results["decision"] == expected["decision"]
    assert results["holdout"] == {"users": 20, "mean": 0.1}
    assert results["ipw"] is None


def test_timeline_is_cumulative_by_exposure_day(known):
    timeline = experiment_results_compute(experiment=known)["timeline"]
    first = (NOW - timedelta(days=10)).date()
    assert timeline["days"] == [first.isoformat(), (first + timedelta(days=1)).isoformat()]
    assert timeline["variants"]["control"]["users"] == [300, 300]
    assert timeline["variants"]["b"]["users"] == [0, 300]
    assert timeline["variants"]["control"]["value"][1] == pytest.approx(0.1)
    assert timeline["lift"]["b"]["estimate"] == [None, pytest.approx(0.05)]


def test_sequential_p_value_is_stored_per_day_and_never_goes_up(known):
    first = experiment_results_compute(experiment=known)
    look = SequentialLook.objects.get(experiment=known, variant__key="b", metric="primary")
    p = first["analysis"]["comparisons"][0]["sequential"]["p_value"]
    assert (look.day, look.p_value, look.users) == (timezone.now().date(), pytest.approx(p), 300)
    # A later look with weaker evidence (a stored smaller p from an earlier day) keeps the min.
    SequentialLook.objects.filter(pk=look.pk).update(day=look.day - timedelta(days=1))
    SequentialLook.objects.create(
        experiment=known,
        variant=look.variant,
        metric="primary",
        day=look.day - timedelta(days=2),
        p_value=p / 10,
        users=200,
    )
    second = experiment_results_compute(experiment=known)
    assert second["analysis"]["comparisons"][0]["sequential"]["p_value"] == pytest.approx(p / 10)
    assert [h["p_value"] for h in second["sequential_history"]["b"]] == [
        pytest.approx(p / 10),
        pytest.approx(p),
        pytest.approx(p / 10),
    ]
    assert SequentialLook.objects.filter(experiment=known, metric="primary").count() == 3


def test_revenue_uses_welch_and_cuped_uses_the_pre_period():
    experiment, control, treatment = _experiment(metric_kind="revenue")
    at = NOW - timedelta(days=10)
    a, b = _customers("a", 200), _customers("b", 200)
    _expose(experiment, control, a, at=at, purchases=40, value=Decimal("10.00"))
    _expose(experiment, treatment, b, at=at, purchases=60, value=Decimal("12.50"))
    # The same buyers bought in the week before exposure too: the covariate explains them.
    Event.objects.bulk_create(
        [
            Event(customer=c, type="purchase", occurred_at=at - timedelta(days=3), value=10)
            for c in a[:40]
        ]
        + [
            Event(customer=c, type="purchase", occurred_at=at - timedelta(days=3), value=10)
            for c in b[:60]
        ]
    )
    results = experiment_results_compute(experiment=experiment)
    control_stats = stats.SampleMoments.from_sums(n=200, total=400.0, total_sq=4000.0)
    b_stats = stats.SampleMoments.from_sums(n=200, total=750.0, total_sq=9375.0)
    expected = stats.analyze_means(
        {"control": control_stats, "b": b_stats}, control="control", weights={"control": 1, "b": 1}
    ).to_dict()
    assert results["analysis"]["comparisons"] == expected["comparisons"]
    assert results["analysis"]["comparisons"][0]["test"]["df"] is not None
    cuped = stats.cuped_adjust(
        {
            "control": stats.CupedSums(200, 400.0, 4000.0, 400.0, 4000.0, 4000.0),
            "b": stats.CupedSums(200, 750.0, 9375.0, 600.0, 6000.0, 7500.0),
        }
    )
    assert results["cuped"]["variance_reduction"] == pytest.approx(cuped.variance_reduction)
    assert results["cuped"]["variance_reduction"] > 0.5


def test_guardrail_breach_is_flagged():
    experiment, control, treatment = _experiment(
        guardrails=[{"event_type": "unsubscribe", "window_days": 3, "kind": "conversion"}]
    )
    at = NOW - timedelta(days=5)
    a, b = _customers("a", 400), _customers("b", 400)
    _expose(experiment, control, a, at=at)
    _expose(experiment, treatment, b, at=at)
    Event.objects.bulk_create(
        [Event(customer=c, type="unsubscribe", occurred_at=at + timedelta(hours=5)) for c in a[:4]]
        + [
            Event(customer=c, type="unsubscribe", occurred_at=at + timedelta(hours=5))
            for c in b[:60]
        ]
    )
    (guardrail,) = experiment_results_compute(experiment=experiment)["guardrails"]
    assert guardrail["metric"] == {
        "event_type": "unsubscribe",
        "window_days": 3,
        "kind": "conversion",
    }
    assert guardrail["breached"] == ["b"]  # unsubscribes going up is the harm
    assert guardrail["analysis"]["comparisons"][0]["absolute_lift"]["estimate"] == pytest.approx(
        56 / 400
    )


def test_bandit_results_are_ipw_corrected_with_the_logged_propensities():
    experiment, control, treatment = _experiment(allocation="thompson", kind="bandit")
    at = NOW - timedelta(days=3)
    a, b = _customers("a", 200), _customers("b", 200)
    props_a = [0.5] * 100 + [0.2] * 100
    props_b = [0.5] * 100 + [0.8] * 100
    _expose(experiment, control, a, at=at, propensity=props_a, purchases=20)
    _expose(experiment, treatment, b, at=at, propensity=props_b, purchases=50)
    results = experiment_results_compute(experiment=experiment)
    outcomes = [1.0] * 20 + [0.0] * 180 + [1.0] * 50 + [0.0] * 150
    expected = ipw_estimate([0] * 200 + [1] * 200, props_a + props_b, outcomes, n_arms=2)
    assert results["ipw"]["control"]["rate"] == pytest.approx(expected.rate[0])
    assert results["ipw"]["b"]["rate_hajek"] == pytest.approx(expected.rate_hajek[1])
    assert results["analysis"]["srm"] is None


def test_no_exposures_keeps_running_without_analysis():
    experiment, _, _ = _experiment()
    results = experiment_results_compute(experiment=experiment)
    assert results["analysis"] is None
    assert results["decision"]["code"] == "keep_running"
    assert results["timeline"]["days"] == []


def test_results_are_cached_until_the_experiment_changes(known):
    cache.clear()
    first = experiment_results(experiment=known)
    Exposure.objects.filter(experiment=known, variant__key="b").delete()
    assert experiment_results(experiment=known) == first
    known.save()  # any change moves updated_at, the cache key
    assert experiment_results(experiment=known)["variants"][1]["users"] == 0


@pytest.mark.django_db(transaction=True)
def test_results_api(known):
    cache.clear()
    client = api_key_client("experiments:read")
    response = client.get("/api/v1/experiments/checkout/results")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["experiment"]["key"] == "checkout"
    assert body["analysis"]["comparisons"][0]["variant"] == "b"
    assert body["decision"]["code"] == "keep_running"
    assert client.get("/api/v1/experiments/nope/results").status_code == 404
    assert (
        api_key_client("experiments:assign").get("/api/v1/experiments/checkout/results").status_code
        == 403
    )


def test_results_cost_a_fixed_number_of_queries(known, django_assert_num_queries):
    known.guardrails = [{"event_type": "unsubscribe", "window_days": 3, "kind": "conversion"}]
    # variants, primary sums, earlier looks, store looks, then per guardrail: sums, earlier
    # looks, store looks; the sequential history. However many customers.
    with django_assert_num_queries(8):
        experiment_results_compute(experiment=known)
    cache.clear()
    with django_assert_num_queries(8):
        experiment_results(experiment=known)
    with django_assert_num_queries(0):
        experiment_results(experiment=known)

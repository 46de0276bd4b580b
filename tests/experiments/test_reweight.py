"""The bandit reweighting task: per-arm counts from exposures and outcomes, burn-in, minimum
share, the AllocationChange log, and idempotence."""

from datetime import timedelta

import pytest
from django.utils import timezone

from experiments.models import AllocationChange, Exposure
from experiments.services import experiment_bandit_reweight, experiment_start
from experiments.tasks import bandits_reweight_task
from profiles.models import Customer, Event
from tests.experiments.factories import ExperimentFactory, VariantFactory

pytestmark = pytest.mark.django_db


def _bandit(allocation="thompson", **kwargs):
    experiment = ExperimentFactory(key="hero", kind="bandit", allocation=allocation, **kwargs)
    VariantFactory(experiment=experiment, key="control", is_control=True)
    VariantFactory(experiment=experiment, key="b")
    return experiment_start(experiment=experiment)


def _arm(experiment, key, users, buyers):
    at = timezone.now() - timedelta(hours=3)
    variant = experiment.variants.get(key=key)
    customers = Customer.objects.bulk_create(
        Customer(external_id=f"{key}-{i}", email=f"{key}{i}@example.com") for i in range(users)
    )
    Exposure.objects.bulk_create(
        Exposure(experiment=experiment, customer=c, variant=variant, exposed_at=at, propensity=0.5)
        for c in customers
    )
    Event.objects.bulk_create(
        Event(customer=c, type="purchase", occurred_at=at + timedelta(hours=1))
        for c in customers[:buyers]
    )


def test_thompson_moves_traffic_to_the_better_arm_once():
    experiment = _bandit(bandit_min_share=0.05)
    _arm(experiment, "control", 200, 10)
    _arm(experiment, "b", 200, 60)
    first = bandits_reweight_task()
    assert [(r["experiment"], r["changed"], r["reason"]) for r in first] == [
        ("hero", True, "reweighted")
    ]
    change = AllocationChange.objects.filter(experiment=experiment, reason="bandit").get()
    assert change.weights["control"] == pytest.approx(0.05)  # only the minimum share is left
    assert change.weights["b"] == pytest.approx(0.95)
    assert change.details == {
        "n": {"control": 200, "b": 200},
        "successes": {"control": 10, "b": 60},
    }
    shares = dict(experiment.variants.values_list("key", "allocation_weight"))
    assert shares == {"control": pytest.approx(0.05), "b": pytest.approx(0.95)}
    # Redelivered: the reweighting just happened, nothing new is logged.
    assert [r["reason"] for r in bandits_reweight_task()] == ["too_soon"]
    assert AllocationChange.objects.filter(experiment=experiment).count() == 2  # start + bandit


def test_burn_in_keeps_the_initial_weights():
    experiment = _bandit(bandit_burn_in=100)
    _arm(experiment, "control", 99, 1)
    _arm(experiment, "b", 300, 100)
    result = experiment_bandit_reweight(experiment=experiment)
    assert (result.changed, result.reason) == (False, "burn_in")
    assert list(AllocationChange.objects.values_list("reason", flat=True)) == ["start"]


def test_fixed_and_stopped_experiments_are_left_alone():
    fixed = ExperimentFactory(key="ab", allocation="fixed", status="running")
    stopped = ExperimentFactory(key="old", allocation="ucb1", status="stopped")
    assert experiment_bandit_reweight(experiment=fixed).reason == "fixed"
    assert experiment_bandit_reweight(experiment=stopped).reason == "not_running"
    assert bandits_reweight_task() == []
    assert not AllocationChange.objects.exists()


def test_ucb1_with_equal_evidence_does_not_log_a_change_twice():
    experiment = _bandit(allocation="epsilon_greedy", bandit_epsilon=0.2)
    _arm(experiment, "control", 150, 15)
    _arm(experiment, "b", 150, 30)
    assert experiment_bandit_reweight(experiment=experiment).weights == {
        "control": pytest.approx(0.01 + 0.98 * 0.1),
        "b": pytest.approx(0.01 + 0.98 * 0.9),
    }
    AllocationChange.objects.filter(reason="bandit").update(
        changed_at=timezone.now() - timedelta(minutes=11)
    )
    experiment.refresh_from_db()
    assert experiment_bandit_reweight(experiment=experiment).reason == "unchanged"
    assert AllocationChange.objects.filter(reason="bandit").count() == 1

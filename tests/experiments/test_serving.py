"""Assignment through Redis and exposures into PostgreSQL: sticky, logged once, invalidated
on change, degrading (not failing) without Redis."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from experiments import serving
from experiments.errors import ExperimentNotFoundError
from experiments.models import AllocationChange, Exposure
from experiments.services import (
    MetricSpec,
    VariantSpec,
    experiment_allocation_set,
    experiment_create,
    experiment_start,
    experiment_stop,
    exposure_buffer_size,
    exposures_flush,
)
from experiments.serving import Assignment, experiment_assign_variant, redis_client, redis_key
from experiments.tasks import exposures_flush_task, sticky_rebuild_task
from profiles.models import Customer
from profiles.segments.services import segment_create_static
from tests.profiles.factories import CustomerFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_process_cache():
    serving._configs.clear()
    serving.breaker.reset()
    yield
    serving._configs.clear()
    serving.breaker.reset()


def running(key="banner", weights=(1, 1), **fields):
    experiment = experiment_create(
        key=key,
        variants=[VariantSpec(key=f"v{i}", weight=w) for i, w in enumerate(weights)],
        metric=MetricSpec(event_type="purchase"),
        **fields,
    )
    return experiment_start(experiment=experiment)


def assign(customer_id, key="banner"):
    return experiment_assign_variant(key=key, customer_id=customer_id)


def test_exposure_is_logged_once_and_flushed_idempotently():
    running()
    answers = {assign("c-1") for _ in range(5)}
    assert len(answers) == 1
    assert exposure_buffer_size() == 1
    assign("c-2")
    assert exposure_buffer_size() == 2

    result = exposures_flush()
    assert (result.read, result.stored, result.customers_created) == (2, 2, 2)
    assert exposure_buffer_size() == 0
    assert exposures_flush().read == 0
    assign("c-1")
    assert exposure_buffer_size() == 0  # sticky: the second call logs nothing
    rows = list(Exposure.objects.order_by("customer__external_id"))
    assert [r.customer.external_id for r in rows] == ["c-1", "c-2"]
    assert [r.variant.key for r in rows] == [
        assign("c-1").variant,
        assign("c-2").variant,
    ]
    assert [r.propensity for r in rows] == [0.5, 0.5]


def test_redelivered_flush_of_the_same_records_stores_nothing_twice():
    running()
    known = CustomerFactory(external_id="known")
    assign("known")
    assign("stranger")
    raw = redis_client().lrange(redis_key(serving.EXPOSURE_BUFFER), 0, -1)
    assert exposures_flush_task()["stored"] == 2
    redis_client().rpush(redis_key(serving.EXPOSURE_BUFFER), *raw)  # a crash before the trim
    again = exposures_flush_task()
    assert (again["read"], again["stored"], again["customers_created"]) == (2, 0, 0)
    assert Exposure.objects.count() == 2
    assert Exposure.objects.filter(customer=known).count() == 1
    stranger = Customer.objects.get(external_id="stranger")
    assert stranger.is_anonymous


def test_one_flush_at_a_time():
    running()
    assign("c-1")
    redis_client().set(redis_key("exp:flush-lock"), "someone else")
    assert exposures_flush().skipped
    assert exposure_buffer_size() == 1
    assert Exposure.objects.count() == 0


def test_assignment_writes_nothing_to_postgres_and_reads_nothing_when_cached():
    running(audience_segment=None)
    assign("warm-up")
    with CaptureQueriesContext(connection) as queries:
        for i in range(20):
            assign(f"c-{i}")
    assert len(queries) == 0


def test_stop_takes_effect_in_a_process_holding_the_old_config():
    experiment = running()
    assert assign("c-1").in_experiment
    cached = serving._configs["banner"]
    experiment_stop(experiment=experiment)
    serving._configs["banner"] = cached  # another process: still has the running config
    assert assign("c-1") == Assignment("banner", None, False, "not_running")


def test_unknown_key_is_not_found_then_found_once_created():
    with pytest.raises(ExperimentNotFoundError, match="No experiment with the key 'later'"):
        assign("c-1", key="later")
    running(key="later")
    assert assign("c-1", key="later").in_experiment


def test_bandit_customer_keeps_first_variant_after_reweighting():
    experiment = running(weights=(1, 1), allocation="thompson")
    before = {f"c-{i}": assign(f"c-{i}").variant for i in range(200)}
    assert set(before.values()) == {"v0", "v1"}
    experiment_allocation_set(
        experiment=experiment, weights={"v0": 0.0, "v1": 1.0}, reason="bandit"
    )
    assert {f"c-{i}": assign(f"c-{i}").variant for i in range(200)} == before
    assert {assign(f"new-{i}").variant for i in range(50)} == {"v1"}
    changes = list(AllocationChange.objects.filter(experiment=experiment))
    assert [(c.reason, c.weights) for c in changes] == [
        ("start", {"v0": 0.5, "v1": 0.5}),
        ("bandit", {"v0": 0.0, "v1": 1.0}),
    ]
    exposures_flush()
    new = Exposure.objects.filter(customer__external_id="new-0").get()
    assert new.propensity == 1.0


def test_bandit_stickiness_survives_a_lost_redis_key_through_the_exposure_table(monkeypatch):
    monkeypatch.setattr(sticky_rebuild_task, "delay", lambda **kwargs: None)
    experiment = running(weights=(1, 1), allocation="epsilon_greedy")
    first = {f"c-{i}": assign(f"c-{i}").variant for i in range(40)}
    exposures_flush()
    experiment_allocation_set(experiment=experiment, weights={"v0": 1, "v1": 0}, reason="bandit")
    client = redis_client()
    lost = [redis_key(f"exp:s:{experiment.pk}:c-{i}") for i in range(40)]
    client.delete(serving.sticky_marker_key(experiment.pk), *lost)  # a flushed Redis
    assert {f"c-{i}": assign(f"c-{i}").variant for i in range(40)} == first
    assert exposure_buffer_size() == 0  # re-warmed from the table, not logged again


def test_global_control_customers_are_out_and_not_logged(settings):
    settings.CAMPAIGN_GLOBAL_CONTROL_PERCENT = 20
    running()
    answers = [assign(f"c-{i}") for i in range(300)]
    out = [a for a in answers if a.reason == "global_control"]
    assert 30 <= len(out) <= 90
    assert all(a.variant is None and not a.in_experiment for a in out)
    assert exposure_buffer_size() == 300 - len(out)


def test_audience_uses_the_materialized_membership_and_aliases():
    members = [CustomerFactory(external_id=f"m-{i}") for i in range(3)]
    CustomerFactory(external_id="outsider")
    segment = segment_create_static(
        name="VIP", kind="imported", customer_ids=[c.pk for c in members]
    )
    members[0].aliases.create(alias="cookie-0")
    running(audience_segment=segment)
    assert all(assign(f"m-{i}").in_experiment for i in range(3))
    assert assign("cookie-0").in_experiment
    assert assign("outsider").reason == "not_in_audience"
    assert assign("never-seen").reason == "not_in_audience"


def test_holdout_is_logged_without_a_variant():
    running(holdout_percent=50)
    answers = [assign(f"c-{i}") for i in range(100)]
    held = [a for a in answers if a.reason == "holdout"]
    assert 30 <= len(held) <= 70
    exposures_flush()
    assert Exposure.objects.filter(variant__isnull=True).count() == len(held)
    assert set(
        Exposure.objects.filter(variant__isnull=True).values_list("propensity", flat=True)
    ) == {0.5}


def test_without_redis_the_hash_still_answers(settings):
    running()
    expected = {f"c-{i}": assign(f"c-{i}") for i in range(20)}
    serving._configs.clear()
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}
    }
    assert {f"c-{i}": assign(f"c-{i}") for i in range(20)} == expected


def test_an_admin_edit_reaches_processes_holding_the_old_config():
    experiment = running()
    assert assign("c-1").in_experiment
    cached = serving._configs["banner"]
    experiment.traffic_percent = 0.01  # as the admin form saves it
    experiment.save()
    serving._configs["banner"] = cached
    assert [assign(f"c-{i}").reason for i in range(3)] == ["traffic"] * 3

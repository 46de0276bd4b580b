"""A bandit's complete marker (experiments.sticky): with it, a first exposure is stored in the
one script call without a query; without it, the exposure table answers and a rebuild is
queued; the rebuild restores the sticky keys from the table and the marker, unless Redis was
flushed meanwhile."""

import pytest
from django.db import transaction

from experiments import selectors, serving, sticky
from experiments.models import Exposure
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
from experiments.serving import experiment_assign_variant, redis_client, redis_key
from experiments.tasks import sticky_rebuild_task
from profiles.services import customer_alias_add
from tests.profiles.factories import CustomerFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_process_cache():
    serving._configs.clear()
    serving.breaker.reset()
    sticky._asked.clear()
    yield
    serving._configs.clear()
    serving.breaker.reset()
    sticky._asked.clear()


@pytest.fixture
def queued(monkeypatch):
    """The rebuilds sent to the broker (captured)."""
    sent: list[dict] = []
    monkeypatch.setattr(sticky_rebuild_task, "delay", lambda **kwargs: sent.append(kwargs))
    return sent


@pytest.fixture
def script_calls(monkeypatch):
    """How many times the assignment's Lua script ran."""
    script = serving.breaker.script(serving._ASSIGN_LUA)
    calls: list[int] = []

    def counted(**kwargs):
        calls.append(1)
        return script(**kwargs)

    monkeypatch.setattr(serving.breaker, "script", lambda source: counted)
    return calls


def bandit(key="banner", allocation="thompson", **fields):
    experiment = experiment_create(
        key=key,
        variants=[VariantSpec(key="v0"), VariantSpec(key="v1")],
        metric=MetricSpec(event_type="purchase"),
        allocation=allocation,
        **fields,
    )
    return experiment_start(experiment=experiment)


def assign(customer_id, key="banner"):
    return experiment_assign_variant(key=key, customer_id=customer_id)


def marker(experiment) -> bool:
    return bool(redis_client().exists(serving.sticky_marker_key(experiment.pk)))


def sticky_value(experiment, customer_id):
    raw = redis_client().get(redis_key(f"exp:s:{experiment.pk}:{customer_id}"))
    return None if raw is None else raw.decode()


def redis_flushed(experiment, customer_ids):
    """What a flushed Redis loses of the experiment: its marker and sticky keys."""
    keys = [redis_key(f"exp:s:{experiment.pk}:{c}") for c in customer_ids]
    redis_client().delete(serving.sticky_marker_key(experiment.pk), *keys)


def test_a_started_bandit_gets_the_marker_after_commit():
    draft = experiment_create(
        key="banner",
        variants=[VariantSpec(key="v0"), VariantSpec(key="v1")],
        metric=MetricSpec(event_type="purchase"),
        allocation="ucb1",
    )
    with transaction.atomic():
        experiment = experiment_start(experiment=draft)
        assert not marker(experiment)
    assert marker(experiment)
    ttl = redis_client().ttl(serving.sticky_marker_key(experiment.pk))
    assert serving.MARKER_TTL_SECONDS - 5 <= ttl <= serving.MARKER_TTL_SECONDS
    assert serving.MARKER_TTL_SECONDS < serving.STICKY_DAYS * 86_400


def test_fixed_weights_get_no_marker_and_a_stop_drops_it():
    fixed = bandit(key="ab", allocation="fixed")
    assert not marker(fixed)
    experiment = bandit()
    experiment_stop(experiment=experiment)
    assert not marker(experiment)


def test_with_the_marker_a_first_exposure_is_one_script_call_and_no_query(
    queued, script_calls, django_assert_num_queries
):
    experiment = bandit()
    assign("warm-up")  # the config is cached
    script_calls.clear()
    with django_assert_num_queries(0):
        answer = assign("c-1")
    assert len(script_calls) == 1
    variant = experiment.variants.get(key=answer.variant)
    assert sticky_value(experiment, "c-1") == str(variant.pk)
    assert exposure_buffer_size() == 2
    assert queued == []
    with django_assert_num_queries(0):
        assert assign("c-1") == answer  # sticky, logged once
    assert exposure_buffer_size() == 2
    exposures_flush()
    assert Exposure.objects.get(customer__external_id="c-1").variant == variant


def test_without_the_marker_the_table_answers_and_one_rebuild_is_queued(queued):
    experiment = bandit(allocation="epsilon_greedy")
    first = {f"c-{i}": assign(f"c-{i}").variant for i in range(40)}
    exposures_flush()
    experiment_allocation_set(experiment=experiment, weights={"v0": 1, "v1": 0}, reason="bandit")
    redis_flushed(experiment, first)
    assert {c: assign(c).variant for c in first} == first  # the remembered variant wins
    assert exposure_buffer_size() == 0
    assert {assign(f"new-{i}").variant for i in range(5)} == {"v0"}
    assert exposure_buffer_size() == 5  # stored by the second script run, as before
    assert queued == [{"experiment_id": experiment.pk}]  # once per process per 30 s
    assert not marker(experiment)


def test_the_rebuild_restores_the_keys_from_the_table_and_the_marker(
    queued, django_assert_num_queries
):
    experiment = bandit(holdout_percent=30)
    first = {f"c-{i}": assign(f"c-{i}") for i in range(60)}
    assert any(a.reason == "holdout" for a in first.values())
    exposures_flush()
    experiment_allocation_set(experiment=experiment, weights={"v0": 0, "v1": 1}, reason="bandit")
    redis_flushed(experiment, first)

    assert sticky_rebuild_task(experiment_id=experiment.pk) == 60
    assert marker(experiment)
    for customer, answer in first.items():
        expected = (
            "h" if answer.variant is None else str(experiment.variants.get(key=answer.variant).pk)
        )
        assert sticky_value(experiment, customer) == expected
    assert sticky_rebuild_task(experiment_id=experiment.pk) == 60  # redelivered: the same keys
    assign("warm-up")
    with django_assert_num_queries(0):
        assert {c: assign(c) for c in first} == first
    assert queued == []


@pytest.mark.parametrize("lost_after", [0, 2])
def test_a_flush_during_the_rebuild_leaves_no_marker(monkeypatch, lost_after):
    experiment = bandit()
    for i in range(3):
        assign(f"c-{i}")
    exposures_flush()
    redis_flushed(experiment, [f"c-{i}" for i in range(3)])
    monkeypatch.setattr(sticky, "STICKY_REBUILD_BATCH", 1)
    chunks = selectors.exposure_sticky_values

    def flushed_midway(**kwargs):
        for n, chunk in enumerate(chunks(**kwargs)):
            yield chunk
            if n == lost_after:  # Redis flushed after this batch was written
                redis_client().delete(redis_key(f"exp:full:{experiment.pk}:canary"))

    monkeypatch.setattr(selectors, "exposure_sticky_values", flushed_midway)
    assert sticky_rebuild_task(experiment_id=experiment.pk) == -1
    assert not marker(experiment)


def test_a_stopped_experiment_is_not_rebuilt():
    experiment = bandit()
    assign("c-1")
    exposures_flush()
    experiment_stop(experiment=experiment)
    redis_flushed(experiment, ["c-1"])
    assert sticky_rebuild_task(experiment_id=experiment.pk) == -1
    assert not marker(experiment)
    assert sticky_value(experiment, "c-1") is None


def test_an_exposure_through_an_alias_gives_the_external_id_its_key(queued):
    customer = CustomerFactory(external_id="x-1")
    customer_alias_add(customer=customer, alias="cookie-1")
    experiment = bandit()
    through_alias = assign("cookie-1").variant
    exposures_flush()
    assert Exposure.objects.get(customer=customer).variant.key == through_alias
    other = "v1" if through_alias == "v0" else "v0"
    experiment_allocation_set(experiment=experiment, weights={other: 1}, reason="bandit")
    assert marker(experiment)
    assert assign("x-1").variant == through_alias  # as the table answers for "x-1"
    assert queued == []


def test_without_redis_a_bandit_still_answers_and_queues_nothing(queued, settings):
    bandit()
    expected = {f"c-{i}": assign(f"c-{i}") for i in range(20)}
    serving._configs.clear()
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}
    }
    assert {f"c-{i}": assign(f"c-{i}") for i in range(20)} == expected  # weights unchanged
    assert queued == []

"""Audience sets in Redis (experiments.audience): the same answers as the membership table,
without a query, following rematerializations, aliases and erasures; PostgreSQL when the set
is missing or Redis is down."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from experiments import serving
from experiments.audience import audience_build
from experiments.services import MetricSpec, VariantSpec, experiment_create, experiment_start
from experiments.serving import experiment_assign_variant, redis_client
from profiles.privacy import customer_erase
from profiles.segments.services import segment_create_static, segment_members_set
from profiles.services import customer_alias_add
from tests.profiles.factories import CustomerFactory

pytestmark = pytest.mark.django_db(transaction=True)

IDS = [*(f"m-{i}" for i in range(6)), "cookie-0", "outsider-0", "outsider-1", "never-seen"]


@pytest.fixture(autouse=True)
def _fresh_process_cache():
    serving._configs.clear()
    serving.breaker.reset()
    yield
    serving._configs.clear()
    serving.breaker.reset()


@pytest.fixture
def members():
    people = [CustomerFactory(external_id=f"m-{i}") for i in range(6)]
    CustomerFactory(external_id="outsider-0")
    CustomerFactory(external_id="outsider-1")
    people[0].aliases.create(alias="cookie-0")
    return people


def running(segment, allocation="fixed"):
    experiment = experiment_create(
        key="banner",
        variants=[VariantSpec(key=f"v{i}") for i in range(3)],
        metric=MetricSpec(event_type="purchase"),
        allocation=allocation,
        audience_segment=segment,
    )
    return experiment_start(experiment=experiment)


def answers(ids=IDS):
    return {i: experiment_assign_variant(key="banner", customer_id=i).reason for i in ids}


def queries_of(function):
    with CaptureQueriesContext(connection) as captured:
        result = function()
    return result, len(captured)


@pytest.mark.parametrize("allocation", ["fixed", "thompson"])
def test_a_built_set_answers_as_the_membership_table_without_a_query(members, allocation):
    segment = segment_create_static(
        name="VIP", kind="imported", customer_ids=[c.pk for c in members[:4]]
    )
    running(segment, allocation)
    from_table, asked = queries_of(answers)  # no set yet: the table answers
    assert asked >= len(IDS)
    expected = {i: "" for i in ("m-0", "m-1", "m-2", "m-3", "cookie-0")}
    assert {i: r for i, r in from_table.items() if r != "not_in_audience"} == expected
    assert audience_build(segment_id=segment.pk) == 5  # four ids and one alias
    serving._configs.clear()
    experiment_assign_variant(key="banner", customer_id="warm-up")  # the config is loaded
    from_set, asked = queries_of(answers)
    assert from_set == from_table
    assert asked == 0  # repeats: sticky in Redis, the audience in the set


def test_a_rematerialized_segment_is_read_from_its_new_set(members):
    segment = segment_create_static(
        name="VIP", kind="imported", customer_ids=[c.pk for c in members[:4]]
    )
    running(segment)
    audience_build(segment_id=segment.pk)
    assert answers(["m-0", "m-5"]) == {"m-0": "", "m-5": "not_in_audience"}
    segment_members_set(segment=segment, customer_ids=[c.pk for c in members[3:]])
    # Every process reloads its config (the generation moved) and the old set is not read.
    assert answers(["m-0", "cookie-0", "m-5"]) == {
        "m-0": "not_in_audience",
        "cookie-0": "not_in_audience",
        "m-5": "",
    }
    assert audience_build(segment_id=segment.pk) == 3
    result, asked = queries_of(lambda: answers(["m-0", "cookie-0", "m-4", "m-5"]))
    assert result == {"m-0": "not_in_audience", "cookie-0": "not_in_audience", "m-4": "", "m-5": ""}
    assert asked == 0


def test_an_empty_audience_is_a_set_too(members):
    segment = segment_create_static(name="Nobody", kind="imported", customer_ids=[])
    running(segment)
    assert audience_build(segment_id=segment.pk) == 0
    experiment_assign_variant(key="banner", customer_id="warm-up")
    result, asked = queries_of(lambda: answers(["m-0", "never-seen"]))
    assert result == {"m-0": "not_in_audience", "never-seen": "not_in_audience"}
    assert asked == 0


def test_an_alias_linked_later_is_in_the_set(members):
    segment = segment_create_static(
        name="VIP", kind="imported", customer_ids=[c.pk for c in members[:2]]
    )
    running(segment)
    audience_build(segment_id=segment.pk)
    assert answers(["m-1"]) == {"m-1": ""}  # the config is loaded
    customer_alias_add(customer=members[1], alias="cookie-1")
    customer_alias_add(customer=members[4], alias="cookie-4")  # not a member
    result, asked = queries_of(lambda: answers(["cookie-1", "cookie-4"]))
    assert result == {"cookie-1": "", "cookie-4": "not_in_audience"}
    assert asked == 0


def test_a_merged_anonymous_profile_follows_its_new_customer(members):
    anonymous = CustomerFactory(external_id="anon-7", is_anonymous=True)
    segment = segment_create_static(
        name="VIP", kind="imported", customer_ids=[members[0].pk, anonymous.pk]
    )
    running(segment)
    audience_build(segment_id=segment.pk)
    customer_alias_add(customer=members[5], alias="anon-7")  # merges into a non-member
    assert answers(["anon-7"]) == {"anon-7": "not_in_audience"}
    customer_alias_add(customer=members[0], alias="anon-8")
    assert answers(["anon-8"]) == {"anon-8": ""}


def test_an_erased_member_leaves_the_set(members):
    segment = segment_create_static(
        name="VIP", kind="imported", customer_ids=[c.pk for c in members[:2]]
    )
    running(segment)
    audience_build(segment_id=segment.pk)
    assert answers(["m-0", "cookie-0"]) == {"m-0": "", "cookie-0": ""}
    customer_erase(customer=members[0], source="request")
    assert answers(["m-0", "cookie-0", "m-1"]) == {
        "m-0": "not_in_audience",
        "cookie-0": "not_in_audience",
        "m-1": "",
    }


def test_a_missing_set_is_asked_of_the_table_and_built_soon(members):
    segment = segment_create_static(
        name="VIP", kind="imported", customer_ids=[c.pk for c in members[:2]]
    )
    running(segment)
    audience_build(segment_id=segment.pk)
    expected = answers()
    for key in redis_client().scan_iter(match="*exp:aud:*"):
        redis_client().delete(key)  # a flushed or expired set
    assert answers() == expected
    assert redis_client().exists(serving.redis_key(f"exp:aud:{segment.pk}:guard"))


def test_without_redis_the_table_answers(members, settings):
    segment = segment_create_static(
        name="VIP", kind="imported", customer_ids=[c.pk for c in members[:3]]
    )
    running(segment)
    audience_build(segment_id=segment.pk)
    expected = answers()
    serving._configs.clear()
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}
    }
    assert answers() == expected

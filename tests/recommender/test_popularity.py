from datetime import timedelta

import pytest
from django.utils import timezone

from profiles.models import Customer, Event
from recommender.algorithms.popularity import popularity_fit
from recommender.models import ModelStatus, ModelVersion
from recommender.services import model_train_popularity


def test_popularity_weights_event_types_and_decays_with_age():
    model = popularity_fit(
        item_ids=["a", "b", "c", "d", ""],
        event_types=["purchase", "view", "view", "unsubscribe", "purchase"],
        ages_days=[14.0, 0.0, 0.0, 0.0, 0.0],
        counts=[1, 2, 1, 9, 9],
        half_life_days=14.0,
    )
    # a: 5 x 0.5 = 2.5; b: 2 x 1 = 2; c: 1; d has no weighted events; "" is no item.
    assert model.item_ids == ["a", "b", "c"]
    assert model.scores == [2.5, 2.0, 1.0]
    assert model.top(2, exclude={"a"}) == [("b", 2.0), ("c", 1.0)]


def test_popularity_of_nothing_is_empty():
    model = popularity_fit(item_ids=[], event_types=[], ages_days=[])
    assert model.item_ids == []


@pytest.mark.django_db
def test_training_replaces_the_active_version():
    customer = Customer.objects.create(external_id="c1")
    now = timezone.now()
    Event.objects.create(customer=customer, type="view", item_external_id="x", occurred_at=now)
    Event.objects.create(
        customer=customer,
        type="purchase",
        item_external_id="y",
        occurred_at=now - timedelta(days=200),
    )
    first = model_train_popularity()
    second = model_train_popularity()
    first.refresh_from_db()
    assert (first.is_active, second.is_active) == (False, True)
    assert second.status == ModelStatus.READY
    # The purchase is older than the 90-day window, so only "x" counts.
    assert second.artifact == {"item_ids": ["x"], "scores": [1.0]}
    assert ModelVersion.objects.filter(is_active=True).count() == 1

import pytest
from django.urls import reverse

from marketing.models import Job
from marketing.simulation.load import store_simulate
from marketing.simulation.store import StoreConfig
from profiles.models import Customer
from recommender.errors import TrainingDataError
from recommender.models import (
    Algorithm,
    ModelStatus,
    ModelVersion,
    RecommendationList,
    SimilarItemList,
)
from recommender.training import (
    events_since_last_training,
    model_train,
    model_train_all,
    model_train_job,
    similar_items_refresh,
)

METRICS = {"precision@10", "recall@10", "map@10", "ndcg@10", "coverage"}


@pytest.fixture
def store(db):
    store_simulate(config=StoreConfig(customers=300, items=60, days=30, seed=11), reset=True)


def test_hybrid_training_measures_stores_and_serves(store):
    version = model_train(algorithm=Algorithm.HYBRID)
    assert version.status == ModelStatus.READY
    assert version.is_active is True
    assert set(version.metrics) >= METRICS
    assert 0 < version.metrics["ndcg@10"] <= 1
    assert version.params["data_window"]["from"] < version.params["data_window"]["to"]
    assert version.training_seconds > 0
    customers_with_events = Customer.objects.filter(events__isnull=False).distinct().count()
    lists = RecommendationList.objects.filter(model_version=version)
    assert lists.count() == version.n_users
    assert version.n_users <= customers_with_events
    first = lists.first()
    assert 0 < len(first.item_ids) <= 60
    assert first.scores == sorted(first.scores, reverse=True)


def test_personalized_model_beats_popularity_on_the_holdout(store):
    hybrid = model_train(algorithm=Algorithm.HYBRID)
    popularity = model_train(algorithm=Algorithm.POPULARITY)
    assert hybrid.metrics["ndcg@10"] > popularity.metrics["ndcg@10"]


def test_item_item_training_stores_related_items(store):
    version = model_train(algorithm=Algorithm.ITEM_ITEM)
    similar = SimilarItemList.objects.filter(model_version=version)
    assert similar.count() > 0
    row = similar.first()
    assert row.item.external_id not in row.item_ids
    assert len(row.item_ids) <= 20


def test_worse_version_is_not_served(store):
    first = model_train(algorithm=Algorithm.ALS)
    ModelVersion.objects.filter(pk=first.pk).update(metrics={**first.metrics, "ndcg@10": 0.99})
    second = model_train(algorithm=Algorithm.ALS)
    first.refresh_from_db()
    assert (first.is_active, second.is_active) == (True, False)
    assert second.status == ModelStatus.READY


def test_no_events_means_no_version(db):
    with pytest.raises(TrainingDataError):
        model_train(algorithm=Algorithm.HYBRID)
    assert ModelVersion.objects.count() == 0
    assert model_train_all() == []


def test_training_job_records_progress_and_result(store):
    job = Job.objects.create(kind="training hybrid", total=100)
    version = model_train_job(algorithm=Algorithm.HYBRID, job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.result["version"]) == ("done", version.pk)
    assert job.done == job.total == 100
    assert job.result["metrics"]["ndcg@10"] == version.metrics["ndcg@10"]
    assert "ready and served" in job.message


def test_events_since_last_training(store):
    assert events_since_last_training() > 0
    model_train(algorithm=Algorithm.HYBRID)
    assert events_since_last_training() == 0


def test_marketer_starts_a_training_from_the_page(
    marketer_client, store, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = marketer_client.post(
            reverse("recommender:modelversion-train"),
            {"algorithm": "hybrid"},
            HTTP_HX_REQUEST="true",
        )
    assert response.status_code == 200
    job = Job.objects.get()
    assert job.kind == "training hybrid"
    assert f'id="job-{job.pk}"' in response.content.decode()
    assert len(callbacks) == 1


def test_analyst_cannot_train_activate_or_roll_back(analyst_client, store):
    assert (
        analyst_client.post(
            reverse("recommender:modelversion-train"), {"algorithm": "als"}
        ).status_code
        == 403
    )
    assert (
        analyst_client.post(
            reverse("recommender:modelversion-rollback"), {"algorithm": "als"}
        ).status_code
        == 403
    )
    assert Job.objects.count() == 0


def test_activate_and_roll_back_from_the_page(marketer_client, store):
    first = model_train(algorithm=Algorithm.ALS)
    second = model_train(algorithm=Algorithm.ALS, activate="never")
    response = marketer_client.post(reverse("recommender:modelversion-activate", args=[second.pk]))
    assert response["HX-Redirect"] == reverse("recommender:modelversion-list")
    assert ModelVersion.objects.get(is_active=True, algorithm="als").pk == second.pk
    marketer_client.post(reverse("recommender:modelversion-rollback"), {"algorithm": "als"})
    assert ModelVersion.objects.get(is_active=True, algorithm="als").pk == first.pk
    page = marketer_client.get(reverse("recommender:modelversion-list")).content.decode()
    assert "metrics-chart" in page
    assert "Roll back" in page


def test_similar_for_items_matches_the_full_item_knn():
    import numpy as np
    import scipy.sparse as sp

    from recommender.algorithms.data import InteractionData, Interactions
    from recommender.algorithms.itemknn import ItemKnnRecommender, similar_for_items

    rng = np.random.default_rng(4)
    users = rng.integers(0, 80, 1500).astype(str)
    items = rng.integers(0, 40, 1500).astype(str)
    data = InteractionData.from_interactions(
        Interactions.from_columns(user_ids=users, item_ids=items)
    )
    full = ItemKnnRecommender(neighbours=20).fit(data)
    all_items = np.arange(data.n_items)
    _, expected = full.similar_items(all_items, 20)
    _, got = similar_for_items(sp.csr_matrix(data.binary()), all_items, 20)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_related_items_refresh_incrementally_from_new_events(store):
    from django.utils import timezone

    from profiles.models import Event

    version = model_train(algorithm=Algorithm.ITEM_ITEM)
    lists = {
        row.item.external_id: row.item_ids
        for row in SimilarItemList.objects.filter(model_version=version).select_related("item")
    }
    anchor = next(iter(lists))
    stranger = next(
        item_id for item_id in sorted(lists) if item_id != anchor and item_id not in lists[anchor]
    )
    untouched = next(i for i in sorted(lists) if i not in (anchor, stranger))
    now = timezone.now()
    shoppers = list(Customer.objects.order_by("pk")[:120])
    Event.objects.bulk_create(
        Event(customer=c, type="view", item_external_id=item, occurred_at=now)
        for c in shoppers
        for item in (anchor, stranger)
    )
    result = similar_items_refresh()
    assert result.touched_items == 2
    fresh = SimilarItemList.objects.get(model_version=version, item__external_id=anchor)
    assert fresh.item_ids[0] == stranger
    same = SimilarItemList.objects.get(model_version=version, item__external_id=untouched)
    assert same.item_ids == lists[untouched]
    assert similar_items_refresh().touched_items == 0
    version.refresh_from_db()
    assert version.params["incremental_refreshes"] == 1
    assert version.params["refreshed_through_pk"] == Event.objects.order_by("-pk").first().pk


def test_event_weights_and_recency_come_from_settings(store, settings):
    settings.RECOMMENDER_EVENT_WEIGHTS = {"view": 0.5, "email_click": 2}
    settings.RECOMMENDER_RECENCY_HALF_LIFE_DAYS = 7.0
    version = model_train(algorithm=Algorithm.ALS)
    weights = version.params["event_weights"]
    assert (weights["view"], weights["email_click"], weights["purchase"]) == (0.5, 2, 5.0)
    assert version.params["recency_half_life_days"] == 7.0
    assert version.status == ModelStatus.READY

"""Affinity segments built from a model trained on a small simulated store."""

import math
from pathlib import Path

import numpy as np
import pytest

from marketing.models import Job, JobStatus
from marketing.simulation.store import CATEGORIES, generate_truth
from profiles.models import Customer, CustomerFeatures, Segment, SegmentKind
from profiles.segments.errors import SegmentNameTakenError
from profiles.services import features_rebuild
from recommender.model_files import SUBDIR, model_files_prune, model_for_version
from recommender.models import Algorithm, Item
from recommender.segment_affinity import (
    AffinityRequest,
    AffinityRequestError,
    NoAffinityModelError,
    affinity_segment_build,
    affinity_segment_create,
    whole_categories,
)
from recommender.tasks import affinity_segment_build_task
from recommender.training import model_train
from tests.recommender.conftest import SMALL_STORE
from tests.recommender.factories import ModelVersionFactory

CONFIG = SMALL_STORE


def _create_and_build(django_capture_on_commit_callbacks, **request):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = affinity_segment_create(**request)
    assert len(callbacks) == 1
    fields = {k: v for k, v in request.items() if k != "user"}
    segment = affinity_segment_build(
        job_id=job.pk, request=AffinityRequest(**fields), user=request.get("user")
    )
    job.refresh_from_db()
    return job, segment


def test_training_keeps_the_model_for_scoring(hybrid, settings):
    name = hybrid.params["model_file"]
    assert (Path(settings.MEDIA_ROOT) / SUBDIR / name).exists()
    loaded = model_for_version(hybrid)
    assert loaded.source == "stored"
    assert len(loaded.user_ids) == hybrid.n_users
    assert len(loaded.item_ids) == hybrid.n_items
    assert loaded.model.name == "hybrid"


def test_category_segment_finds_customers_who_like_the_category(
    hybrid, marketer, django_capture_on_commit_callbacks
):
    features_rebuild(repair=True)
    with_profiles = CustomerFeatures.objects.filter(
        customer_id__in=[int(u) for u in model_for_version(hybrid).user_ids.tolist()],
        state__affinity__has_any_keys=CATEGORIES,
    ).count()
    assert with_profiles > 0
    job, segment = _create_and_build(
        django_capture_on_commit_callbacks,
        name="Books fans",
        expression='category = "books"',
        top_n=40,
        user=marketer,
    )
    assert job.status == JobStatus.DONE
    assert job.result == {"segment": segment.pk, "members": 40}
    assert segment.kind == SegmentKind.MODEL
    assert segment.member_count == 40
    assert segment.created_by == marketer
    matched = Item.objects.filter(category="books", is_active=True).count()
    assert segment.definition | {"seconds": 0} == {
        "source": "attribute_affinity",
        "expression": 'category = "books"',
        "top_n": 40,
        "matched_items": matched,
        "scored_items": segment.definition["scored_items"],
        "model_version": hybrid.pk,
        "algorithm": "hybrid",
        "model_source": "stored",
        "fallback_from_served_model": False,
        "scoring": "rank average of the share of the customer's predicted score mass on the "
        "matching items (50%) and the share of the customer's profile category affinity "
        "(decayed views, clicks, carts, purchases) on books (50%)",
        "profile_categories": ["books"],
        "profile_weight": 0.5,
        "profile_prior_events": 5.0,
        "customers_with_profile_affinity": with_profiles,
        "customers_scored": hybrid.n_users,
        "scored_note": "Only customers known to the model (with events in its training "
        "window) are scored.",
        "seconds": 0,
        "job": job.pk,
    }
    assert 0 < segment.definition["scored_items"] <= matched
    memberships = list(segment.memberships.order_by("-score"))
    assert all(m.score is not None for m in memberships)
    # The hidden truth: members like books far more often than the customers at large.
    truth = generate_truth(CONFIG)
    books = CATEGORIES.index("books")
    fans = set(np.flatnonzero((np.argsort(-truth.taste, axis=1)[:, :2] == books).any(axis=1)))
    index = {ext: i for i, ext in enumerate(truth.customer_external_ids)}
    members = Customer.objects.filter(segment_memberships__segment=segment).values_list(
        "external_id", flat=True
    )
    share_in_segment = sum(index[e] in fans for e in members) / 40
    assert share_in_segment > 2 * len(fans) / CONFIG.customers


def test_item_segment_by_percent(hybrid, django_capture_on_commit_callbacks):
    item = Item.objects.order_by("pk").first()
    job, segment = _create_and_build(
        django_capture_on_commit_callbacks,
        name="Likely to buy",
        item_id=item.external_id,
        top_percent=10.0,
    )
    assert job.status == JobStatus.DONE
    assert segment.member_count == math.ceil(hybrid.n_users * 0.1)
    assert segment.definition["source"] == "item_affinity"
    assert segment.definition["item"] == item.external_id
    assert segment.definition["top_percent"] == 10.0
    assert segment.definition["scoring"] == (
        "the item's predicted score, standardised over the catalog per customer"
    )


def test_expression_that_is_not_whole_categories_is_scored_by_the_model_alone(
    hybrid, django_capture_on_commit_callbacks
):
    features_rebuild(repair=True)
    cheap = 'category = "books" and price < 15'
    assert whole_categories(
        list(Item.objects.filter(category="books").values_list("external_id", flat=True))
    ) == ["books"]
    _, segment = _create_and_build(
        django_capture_on_commit_callbacks, name="Cheap books", expression=cheap, top_n=10
    )
    assert segment.member_count == 10
    assert segment.definition["scoring"] == (
        "share of the customer's predicted score mass on the matching items"
    )
    assert "profile_categories" not in segment.definition


def test_whole_categories(small_store):
    books = list(Item.objects.filter(category="books").values_list("external_id", flat=True))
    other = Item.objects.exclude(category="books").order_by("pk").first().category
    more = list(Item.objects.filter(category=other).values_list("external_id", flat=True))
    assert whole_categories(books + more) == sorted(["books", other])
    assert whole_categories(books[1:]) is None
    Item.objects.filter(external_id=books[0]).update(is_active=False)
    assert whole_categories(books[1:]) == ["books"]
    Item.objects.filter(external_id=books[1]).update(category="")
    assert whole_categories(books[1:]) is None


def test_redelivered_task_makes_one_segment(hybrid, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        job = affinity_segment_create(name="Pets", expression='category = "books"', top_n=10)
    request = {"name": "Pets", "expression": 'category = "books"', "top_n": 10}
    first = affinity_segment_build_task.run(job_id=job.pk, request=request)
    second = affinity_segment_build_task.run(job_id=job.pk, request=request)
    assert first == second
    assert Segment.objects.filter(name="Pets").count() == 1
    job.refresh_from_db()
    assert job.status == JobStatus.DONE


def test_served_popularity_falls_back_to_a_personalized_model(
    hybrid, settings, django_capture_on_commit_callbacks
):
    ModelVersionFactory(algorithm="popularity", is_active=True)
    settings.RECOMMENDER_SERVING_ALGORITHMS = ["popularity", "hybrid"]
    _, segment = _create_and_build(
        django_capture_on_commit_callbacks, name="Fallback", expression="price > 0", top_n=5
    )
    assert segment.definition["model_version"] == hybrid.pk
    assert segment.definition["fallback_from_served_model"] is True


def test_missing_model_file_refits_the_version(
    hybrid, settings, django_capture_on_commit_callbacks
):
    (Path(settings.MEDIA_ROOT) / SUBDIR / hybrid.params["model_file"]).unlink()
    _, segment = _create_and_build(
        django_capture_on_commit_callbacks, name="Refit", expression="price > 0", top_n=5
    )
    assert segment.member_count == 5
    assert segment.definition["model_source"] == "refit"


@pytest.mark.parametrize(
    ("request_kwargs", "field", "message"),
    [
        (
            {"expression": 'colour = "red"', "top_n": 5},
            "expression",
            "Unknown field 'colour'; known fields: brand, category, external_id, in_stock, price, "
            "title (at position 1)",
        ),
        ({"expression": 'category = "nothing"', "top_n": 5}, "expression",
         "No active catalog item matches this expression."),
        ({"item_id": "no-such-item", "top_n": 5}, "item_id",
         "No active catalog item has the id 'no-such-item'."),
        ({"expression": "price > 0", "top_n": 5, "item_id": "i000001"}, "expression",
         "Give either an item or an attribute expression, not both."),
        ({"expression": "price > 0"}, "top_n",
         "Give either a number of customers or a percentage, not both."),
        ({"expression": "price > 0", "top_percent": 120.0}, "top_percent",
         "The percentage must be more than 0 and at most 100."),
    ],
)  # fmt: skip
def test_bad_requests_are_refused_with_the_field(hybrid, request_kwargs, field, message):
    jobs = Job.objects.count()
    with pytest.raises(AffinityRequestError) as caught:
        affinity_segment_create(name="Nope", **request_kwargs)
    assert caught.value.extra == {"errors": {field: message}}
    assert Job.objects.count() == jobs
    assert not Segment.objects.filter(name="Nope").exists()


def test_taken_name_is_refused(hybrid, django_capture_on_commit_callbacks):
    _create_and_build(
        django_capture_on_commit_callbacks, name="Once", expression="price > 0", top_n=3
    )
    jobs = Job.objects.count()
    with pytest.raises(SegmentNameTakenError):
        affinity_segment_create(name="Once", expression="price > 0", top_n=3)
    assert Job.objects.count() == jobs


def test_popularity_alone_cannot_rank_customers(small_store):
    model_train(algorithm=Algorithm.POPULARITY)
    with pytest.raises(NoAffinityModelError):
        affinity_segment_create(name="Nope", expression="price > 0", top_n=3)
    assert Job.objects.count() == 0


def test_old_versions_model_files_are_pruned(small_store, settings):
    versions = [model_train(algorithm=Algorithm.ALS, activate="never") for _ in range(3)]
    directory = Path(settings.MEDIA_ROOT) / SUBDIR
    names = [v.params["model_file"] for v in versions]
    assert all((directory / n).exists() for n in names)
    assert model_files_prune(keep_per_algorithm=1) == 2
    assert [(directory / n).exists() for n in names] == [False, False, True]
    assert model_for_version(versions[0]).source == "refit"
    assert model_files_prune(keep_per_algorithm=1) == 0

"""POST /api/v1/offers/rank through the hot path (recommender.api_offers.offer_rank_view):
the same answers, errors and rate limit as OfferRankView, which serves what it does not."""

import json
import time

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from marketing.throttling import counter_quota
from recommender.api_offers import rank_input
from recommender.models import OfferDecision
from recommender.offers_log import PENDING_KEY, offer_log_process
from recommender.offers_policy import redis_client, redis_key
from recommender.serializers_offers import OfferRankInputSerializer
from tests.helpers import api_key_client, start_of_rate_window
from tests.recommender.factories import OfferFactory
from tests.recommender.offers_helpers import profiled_customer

URL = "/api/v1/offers/rank"
CANDIDATES = [
    {"id": f"promo-{n}", "features": {"type": "discount", "pct": n * 5, "tags": ["a", "b"]}}
    for n in range(1, 6)
]
BODY = {
    "customer_id": "cust-a",
    "context": {"device": "mobile", "hour": 20, "cart_value": 35.5, "new": False},
    "candidates": CANDIDATES,
    "placement": "home_banner",
    "k": 3,
}


@pytest.fixture(autouse=True)
def _no_exploration(settings):
    settings.OFFERS_EXPLORATION = 0.0  # a deterministic ranking, to compare both paths


def by_the_view(response) -> bool:
    """Whether DRF's view answered (its Response), not the hot path (a plain HttpResponse)."""
    return hasattr(response, "renderer_context")


def _pending() -> int:
    return redis_client().llen(redis_key(PENDING_KEY))


@pytest.mark.django_db
def test_json_calls_are_served_by_the_hot_path_with_the_views_answers(storefront_client):
    profiled_customer()
    hot = storefront_client.post(URL, BODY, format="json")
    # `?format=json` is not the hot path's: DRF's view answers the same request.
    view = storefront_client.post(URL + "?format=json", BODY, format="json")
    assert not by_the_view(hot)
    assert by_the_view(view)
    assert hot.status_code == view.status_code == 200
    for header in ("Content-Type", "Vary", "Allow"):
        assert hot[header] == view[header]
    hot_body, view_body = hot.json(), view.json()
    assert hot_body.keys() == view_body.keys() == {"event_id", "ranking", "model_version"}
    assert hot_body["event_id"] != view_body["event_id"]
    assert hot_body["model_version"] == view_body["model_version"]
    # A fresh model ties every candidate (the order among them is drawn): same shares.
    assert [r["probability"] for r in hot_body["ranking"]] == [
        r["probability"] for r in view_body["ranking"]
    ]
    assert len(hot_body["ranking"]) == 3
    assert {r["id"] for r in hot_body["ranking"]} <= {c["id"] for c in CANDIDATES}
    assert _pending() == 2  # both decisions logged
    # Rendered as DRF renders: compact separators.
    assert b", " not in hot.content
    assert b'":' in hot.content


@pytest.mark.django_db
def test_without_candidates_and_with_offer_ids_as_the_view(storefront_client):
    offers = OfferFactory.create_batch(3, placements=["home_banner"])
    for body in (
        {"customer_id": "new-visitor", "placement": "home_banner"},
        {"customer_id": "new-visitor", "candidates": [offers[0].pk, f"offer:{offers[1].pk}"]},
    ):
        hot = storefront_client.post(URL, body, format="json")
        view = storefront_client.post(URL + "?format=json", body, format="json")
        assert not by_the_view(hot)
        assert by_the_view(view)
        assert {r["id"] for r in hot.json()["ranking"]} == {r["id"] for r in view.json()["ranking"]}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"k": 0}, "k"),
        ({"k": "3"}, None),  # coerced by the serializer: the view answers 200
        ({"k": True}, "k"),
        ({"customer_id": ""}, "customer_id"),
        ({"customer_id": "x" * 129}, "customer_id"),
        ({"customer_id": "  cust-a "}, None),  # trimmed by the serializer
        ({"customer_id": 42}, None),  # a number is a CharField's string
        ({"context": None}, "context"),
        ({"context": {"nested": {"a": 1}}}, "context"),
        ({"candidates": "promo-1"}, "candidates"),
        ({"candidates": [{"id": "x", "extra": 1}]}, "candidates"),
        ({"candidates": [True]}, "candidates"),
        ({"candidates": [{"id": f"c{n}"} for n in range(101)]}, "candidates"),
        ({"placement": ""}, "placement"),
        ({"placement": "home banner"}, "placement"),
        ({"experiment": "not a slug"}, "experiment"),
    ],
)
def test_input_the_hot_path_is_not_sure_of_is_answered_by_the_view(
    storefront_client, change, field
):
    body = {**BODY, **change}
    response = storefront_client.post(URL, body, format="json")
    assert by_the_view(response)
    if field is None:
        assert response.status_code == 200
    else:
        assert response.status_code == 400
        assert field in response.json()["extra"]["fields"]


@pytest.mark.parametrize(
    "body",
    [
        BODY,
        {"customer_id": "c"},
        {**BODY, "experiment": "offer-test"},
        {**BODY, "context": {"tags": ["x", 1, 2.5, True]}},
        {**BODY, "candidates": ["offer:3", 7, "item:sku-1", {"id": 5}]},
        {**BODY, "candidates": []},
        {**BODY, "unknown": "ignored"},
    ],
)
def test_what_the_hot_path_accepts_the_serializer_validates_to_the_same_data(body):
    fast = rank_input(json.dumps(body).encode())
    serializer = OfferRankInputSerializer(data=body)
    assert serializer.is_valid(), serializer.errors
    assert fast == dict(serializer.validated_data)


@pytest.mark.parametrize(
    "raw",
    [
        b"[1, 2]",
        b"not json",
        b'{"customer_id": "a", "k": NaN}',
        b'{"customer_id": "a\\u0000b"}',
        b'{"customer_id": "a", "context": {"x": Infinity}}',
        b'{"customer_id": "a", "context": {"x": 12345678901234567890123}}',
    ],
)
def test_bodies_the_hot_path_leaves_to_drf(raw):
    assert rank_input(raw) is None


@pytest.mark.django_db
def test_keys_and_scopes_are_checked_by_the_view():
    no_scope = api_key_client("events:write")
    refused = no_scope.post(URL, BODY, format="json")
    assert by_the_view(refused)
    assert refused.status_code == 403
    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION="Api-Key nope")
    bad = stranger.post(URL, BODY, format="json")
    assert by_the_view(bad)
    assert bad.status_code in (401, 403)
    assert _pending() == 0


@pytest.mark.django_db
def test_an_unknown_experiment_is_the_views_404_counted_once(storefront_client, storefront_key):
    key, _ = storefront_key
    key.rate_limit = "100/hour"
    key.save()
    start_of_rate_window(3600)
    response = storefront_client.post(URL, {**BODY, "experiment": "nope"}, format="json")
    assert by_the_view(response)
    assert response.status_code == 404
    assert response.json()["code"] == "experiment_not_found"
    quota = counter_quota(caller=f"key:{key.pk}", rate="100/hour", now=time.time())
    assert int(redis_client().get(quota.key)) == 1
    assert _pending() == 0


@pytest.mark.django_db
def test_over_the_limit_the_hot_path_logs_nothing_and_the_view_answers_429(
    storefront_client, storefront_key
):
    key, _ = storefront_key
    key.rate_limit = "2/hour"
    key.save()
    cache.clear()
    start_of_rate_window(3600)
    answers = [storefront_client.post(URL, BODY, format="json") for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 429]
    assert not by_the_view(answers[0])
    assert answers[2]["Retry-After"]
    assert _pending() == 2
    quota = counter_quota(caller=f"key:{key.pk}", rate="2/hour", now=time.time())
    assert int(redis_client().get(quota.key)) == 3  # counted once each, in the decision's trip
    # No candidate eligible: no decision to write, the call is still counted.
    empty = storefront_client.post(URL, {"customer_id": "c", "candidates": []}, format="json")
    assert empty.status_code == 429
    assert int(redis_client().get(quota.key)) == 4


@pytest.mark.django_db
def test_a_big_integer_in_the_context_is_ranked_by_the_view_and_logged_exactly(
    storefront_client,
):
    body = {**BODY, "context": {"session": 12345678901234567890123}}
    response = storefront_client.post(URL, body, format="json")
    assert by_the_view(response)
    assert response.status_code == 200
    (entry,) = redis_client().lrange(redis_key(PENDING_KEY), 0, -1)
    assert json.loads(entry)["context"] == {"session": 12345678901234567890123}

    assert offer_log_process().flushed == 1  # read back by json: the integer stays exact
    assert OfferDecision.objects.get().context == {"session": 12345678901234567890123}

import datetime as dt
import time
import uuid

import pytest
from django.urls import reverse
from django.utils import timezone

from marketing.throttling import ApiKeyRateThrottle, counter_quota
from profiles.models import Event
from recommender.models import DecisionMode, OfferDecision
from recommender.offers_log import (
    PENDING_KEY,
    REWARDS_KEY,
    event_rewards_consume,
    offer_log_process,
)
from recommender.offers_policy import redis_client, redis_key
from tests.helpers import start_of_rate_window
from tests.profiles.factories import CustomerFactory, SegmentFactory
from tests.recommender.factories import ItemFactory, OfferFactory
from tests.recommender.offers_helpers import profiled_customer

RANK = reverse("api:offers-rank")
REWARD = reverse("api:offers-reward")


def _rank(client, **body):
    return client.post(RANK, {"customer_id": "cust-a", **body}, format="json")


def _pending() -> int:
    return redis_client().llen(redis_key(PENDING_KEY))


@pytest.mark.django_db
def test_rank_without_candidates_ranks_the_eligible_offers_of_the_placement(storefront_client):
    vip = SegmentFactory(name="VIP")
    profiled_customer(segments=[vip])
    now = timezone.now()
    banner = OfferFactory(name="banner", placements=["home_banner"], priority=5)
    anywhere = OfferFactory(name="anywhere", placements=[], priority=1)
    vip_only = OfferFactory(name="vip", segment=vip)
    OfferFactory(name="cart only", placements=["cart"])
    OfferFactory(name="other segment", segment=SegmentFactory(name="Others"))
    OfferFactory(name="paused", status="paused")
    OfferFactory(name="over", ends_at=now - dt.timedelta(hours=1))
    OfferFactory(name="later", starts_at=now + dt.timedelta(hours=1))
    OfferFactory(name="no stock", item=ItemFactory(in_stock=False))
    OfferFactory(name="email only", channels=["email"])

    response = _rank(
        storefront_client,
        context={"device": "mobile", "hour": 20, "channel": "web"},
        placement="home_banner",
        k=5,
    )

    assert response.status_code == 200
    body = response.json()
    assert {r["id"] for r in body["ranking"]} == {
        str(banner.pk),
        str(anywhere.pk),
        str(vip_only.pk),
    }
    assert body["model_version"] == 0
    # A fresh model: every candidate ties, so each is first with probability 1/3.
    assert [r["probability"] for r in body["ranking"]] == [pytest.approx(1 / 3, abs=1e-5)] * 3
    uuid.UUID(body["event_id"])
    assert _pending() == 1
    assert OfferDecision.objects.count() == 0  # nothing written on the request path


@pytest.mark.django_db
def test_the_logged_decision_keeps_context_profile_features_and_candidates(storefront_client):
    vip = SegmentFactory(name="VIP")
    customer = profiled_customer(segments=[vip])
    offer = OfferFactory(type="discount", discount_percent="20.00", item=ItemFactory(price="30"))

    body = _rank(storefront_client, context={"page": "cart", "cart_value": 60}, k=1).json()
    assert offer_log_process().flushed == 1

    decision = OfferDecision.objects.get()
    assert str(decision.event_id) == body["event_id"]
    assert decision.customer == customer
    assert decision.customer_ref == "cust-a"
    assert decision.context == {"page": "cart", "cart_value": 60}
    features = decision.customer_features
    assert features["segments"] == [vip.pk]
    assert features["orders"] == 3
    assert features["top_categories"] == ["shoes", "books"]
    assert features["category_affinity"] == {"shoes": 0.75, "books": 0.25}
    assert 2.9 < features["recency_days"] < 3.1
    assert features["id"] == str(customer.pk)  # per-customer crosses
    assert decision.candidates == [
        {
            "id": str(offer.pk),
            "features": {
                "type": "discount",
                "discount": 20.0,
                "popularity": "new",
                "bundle_size": 1,
                "category": "shoes",
                "brand": "Acme",
                "price": 30.0,
                "tier": "standard",
            },
        }
    ]
    assert (decision.chosen_id, decision.chosen_index, decision.probability) == (
        str(offer.pk), 0, 1.0,
    )  # fmt: skip
    assert decision.chosen_item == offer.item.external_id
    assert decision.mode == DecisionMode.LEARNED
    assert decision.reward is None
    assert _pending() == 0
    # Flushing again inserts nothing twice.
    assert offer_log_process().flushed == 0
    assert OfferDecision.objects.count() == 1


@pytest.mark.django_db
def test_rank_inline_candidates_returns_k_of_them(storefront_client):
    candidates = [{"id": f"a{i}", "features": {"color": "red", "price": i}} for i in range(20)]
    body = _rank(storefront_client, candidates=candidates, k=3).json()
    ranked = [r["id"] for r in body["ranking"]]
    assert len(ranked) == 3
    assert set(ranked) <= {f"a{i}" for i in range(20)}
    assert sum(r["probability"] for r in body["ranking"]) <= 1.0


@pytest.mark.django_db
def test_rank_offer_and_item_ids_as_candidates(storefront_client):
    offer = OfferFactory()
    paused = OfferFactory(status="paused")
    item = ItemFactory(external_id="sku-x")
    body = _rank(
        storefront_client,
        candidates=[offer.pk, f"offer:{paused.pk}", "sku-x", "item:missing", {"id": "z"}],
        k=10,
    ).json()
    assert {r["id"] for r in body["ranking"]} == {str(offer.pk), item.external_id, "z"}


@pytest.mark.django_db
def test_unknown_customer_without_consent_gets_a_ranking_from_context(storefront_client):
    OfferFactory.create_batch(2)
    body = _rank(storefront_client, customer_id="new-visitor", context={"page": "home"}).json()
    assert len(body["ranking"]) == 2
    offer_log_process()
    decision = OfferDecision.objects.get()
    assert decision.customer is None
    assert decision.customer_features == {"new": True}


@pytest.mark.django_db
def test_no_eligible_candidate_returns_an_empty_ranking_and_logs_nothing(storefront_client):
    body = _rank(storefront_client, placement="nowhere").json()
    assert body == {"event_id": None, "ranking": [], "model_version": 0}
    assert _pending() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"k": 0}, "k"),
        ({"k": 51}, "k"),
        ({"candidates": [{"features": {}}]}, "candidates"),
        ({"candidates": [True]}, "candidates"),
        ({"candidates": [{"id": "a", "features": {"x": {"nested": 1}}}]}, "candidates"),
        ({"context": ["not", "a", "dict"]}, "context"),
        ({"context": {"x": {"nested": 1}}}, "context"),
        ({"placement": "has space"}, "placement"),
        ({"candidates": [f"c{i}" for i in range(101)]}, "candidates"),
    ],
)
@pytest.mark.django_db
def test_rank_rejects_bad_input_with_field_errors(storefront_client, body, field):
    response = _rank(storefront_client, **body)
    assert response.status_code == 400
    assert field in response.json()["extra"]["fields"]
    assert _pending() == 0


@pytest.mark.django_db
def test_rank_needs_customer_id(storefront_client):
    response = storefront_client.post(RANK, {}, format="json")
    assert response.status_code == 400
    assert "customer_id" in response.json()["extra"]["fields"]


@pytest.mark.django_db
def test_rank_and_reward_need_their_scopes(api_client):
    assert api_client.post(RANK, {"customer_id": "a"}, format="json").status_code in (401, 403)
    assert api_client.post(REWARD, {}, format="json").status_code in (401, 403)


@pytest.mark.django_db
def test_reward_before_and_after_the_flush_is_recorded_once(storefront_client):
    OfferFactory()
    first = _rank(storefront_client).json()["event_id"]
    second = _rank(storefront_client).json()["event_id"]

    response = storefront_client.post(REWARD, {"event_id": first, "reward": 1}, format="json")
    assert response.status_code == 200
    assert response.json() == {"event_id": first, "status": "recorded"}
    again = storefront_client.post(REWARD, {"event_id": first, "reward": 0}, format="json")
    assert again.json()["status"] == "duplicate"

    result = offer_log_process()
    assert (result.flushed, result.rewards) == (2, 1)
    assert redis_client().hlen(redis_key(REWARDS_KEY)) == 0
    # After the flush the marker still routes through the buffer; applied on the next pass.
    late = storefront_client.post(REWARD, {"event_id": second, "reward": 0.5}, format="json")
    assert late.json()["status"] == "recorded"
    assert offer_log_process().rewards == 1

    rewards = dict(OfferDecision.objects.values_list("event_id", "reward"))
    assert rewards == {uuid.UUID(first): 1.0, uuid.UUID(second): 0.5}
    assert set(OfferDecision.objects.values_list("reward_source", flat=True)) == {"api"}


@pytest.mark.django_db
def test_reward_for_an_unknown_event_is_404(storefront_client):
    response = storefront_client.post(
        REWARD, {"event_id": str(uuid.uuid4()), "reward": 1}, format="json"
    )
    assert response.status_code == 404
    assert response.json()["code"] == "offer_event_not_found"
    assert redis_client().hlen(redis_key(REWARDS_KEY)) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"event_id": "nope", "reward": 1}, "event_id"),
        ({"event_id": str(uuid.uuid4()), "reward": 1.5}, "reward"),
        ({"event_id": str(uuid.uuid4()), "reward": -0.1}, "reward"),
        ({"event_id": str(uuid.uuid4())}, "reward"),
    ],
)
@pytest.mark.django_db
def test_reward_rejects_bad_input(storefront_client, body, field):
    response = storefront_client.post(REWARD, body, format="json")
    assert response.status_code == 400
    assert field in response.json()["extra"]["fields"]


@pytest.mark.django_db
def test_decisions_without_reward_get_the_default_after_the_wait(storefront_client, settings):
    settings.OFFERS_REWARD_WAIT_SECONDS = 600
    OfferFactory()
    event_id = _rank(storefront_client).json()["event_id"]
    offer_log_process()
    assert offer_log_process(now=timezone.now() + dt.timedelta(seconds=599)).settled == 0
    assert offer_log_process(now=timezone.now() + dt.timedelta(seconds=601)).settled == 1
    decision = OfferDecision.objects.get()
    assert (decision.reward, decision.reward_source) == (0.0, "default")
    # Once the marker is gone, a late reward is refused.
    redis_client().delete(redis_key(f"offers:ev:{event_id}"))
    late = storefront_client.post(REWARD, {"event_id": event_id, "reward": 1}, format="json")
    assert late.status_code == 409
    assert OfferDecision.objects.get().reward == 0.0


def _event(customer, type_, *, item="", properties=None, seconds_ago=30):
    """An event received `seconds_ago` (settled for the consumer)."""
    now = timezone.now()
    event = Event.objects.create(
        customer=customer,
        type=type_,
        item_external_id=item,
        properties=properties or {},
        occurred_at=now,
    )
    Event.objects.filter(pk=event.pk).update(received_at=now - dt.timedelta(seconds=seconds_ago))
    return event


@pytest.mark.django_db
def test_offer_clicks_and_purchases_of_the_offered_item_are_rewards(storefront_client):
    customer = profiled_customer()
    other = CustomerFactory(external_id="cust-b")
    offer = OfferFactory(item=ItemFactory(external_id="sku-9"))
    event_rewards_consume(now=timezone.now())  # the watermark starts after older events
    by_click = _rank(storefront_client, candidates=[offer.pk]).json()["event_id"]
    by_purchase = _rank(storefront_client, candidates=[offer.pk]).json()["event_id"]
    by_ref = _rank(storefront_client, candidates=[offer.pk]).json()["event_id"]
    offer_log_process()
    # Match by event id first (exactly that decision), then by offer id and by item.
    _event(customer, "offer_click", properties={"event_id": by_ref})
    _event(customer, "offer_click", item=str(offer.pk))
    _event(other, "purchase", item="sku-9")  # another customer: no reward
    _event(customer, "purchase", item="sku-9")

    result = offer_log_process()

    assert result.event_rewards == 3
    rewards = dict(OfferDecision.objects.values_list("event_id", "reward_source"))
    assert rewards[uuid.UUID(by_ref)] == "click"
    assert sorted([rewards[uuid.UUID(by_click)], rewards[uuid.UUID(by_purchase)]]) == [
        "click",
        "purchase",
    ]
    assert offer_log_process().event_rewards == 0  # the watermark moved


@pytest.mark.django_db
def test_caps_per_customer_and_total_exclude_the_offer(storefront_client):
    capped = OfferFactory(max_impressions_per_customer=1)
    total = OfferFactory(max_impressions=2)
    free = OfferFactory()

    def ids(customer_id):
        body = _rank(storefront_client, customer_id=customer_id, k=5).json()
        return {r["id"] for r in body["ranking"]}

    assert ids("a") == {str(capped.pk), str(total.pk), str(free.pk)}
    assert ids("a") == {str(total.pk), str(free.pk)}
    assert ids("b") == {str(capped.pk), str(free.pk)}


@pytest.mark.django_db
def test_rank_and_reward_count_the_key_limit_with_one_counter(storefront_client, storefront_key):
    key, _ = storefront_key
    key.rate_limit = "3/hour"  # a fixed hourly window: the calls below share one
    key.save()  # clears the verified-key cache
    OfferFactory.create_batch(2)
    start_of_rate_window(3600)
    ranked = [_rank(storefront_client, context={"page": "home"}) for _ in range(2)]
    reward = storefront_client.post(
        "/api/v1/offers/reward", {"event_id": ranked[0].json()["event_id"], "reward": 1}, "json"
    )
    refused = _rank(storefront_client, context={"page": "home"})
    assert [r.status_code for r in ranked] == [200, 200]
    assert reward.status_code == 200
    assert refused.status_code == 429
    assert refused.json()["code"] == "throttled"
    assert _pending() == 2  # the refused call ranked and logged nothing
    quota = counter_quota(caller=f"key:{key.pk}", rate="3/hour", now=time.time())
    assert ApiKeyRateThrottle.scope in quota.key
    assert int(redis_client().get(quota.key)) == 4  # one INCR per call, no list of times

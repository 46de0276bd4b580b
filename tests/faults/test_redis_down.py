"""Redis down (issue #11, faults): gunicorn runs against a private redis-server (cache, hot
path buffers and Celery broker in one, as in production), which is SIGKILLed and started
again. While it is down the recommendation, offer rank/reward and assignment APIs answer 200
from their fallbacks and event ingestion keeps storing into PostgreSQL; once it is back the
buffers flush and the traffic of the outage is caught up.

The private Redis writes an append-only file (fsync always), as a production Redis should:
what the hot paths buffered just before the crash survives the restart and is flushed."""

import shutil
import time
import uuid
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from experiments.models import Exposure
from experiments.services import exposures_flush
from marketing.services import api_key_create
from profiles.models import Customer, CustomerFeatures, Event
from profiles.services import features_update_pending
from recommender.models import Algorithm, OfferDecision
from recommender.offers_log import offer_log_process
from recommender.training import model_train
from tests.faults.conftest import (
    PrivateRedis,
    free_port,
    gunicorn_start,
    server_env,
    shared_database_url,
    stop_group,
)
from tests.helpers import wait_for
from tests.recommender.factories import OfferFactory
from tests.recommender.offers_helpers import profiled_customer

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

BREAKER_SECONDS = 2.0  # recommender.serving_cache / experiments.serving


@pytest.fixture
def persistent_redis():
    server = PrivateRedis(appendonly=True)
    server.start()
    yield server
    server.kill()
    shutil.rmtree(server.dir, ignore_errors=True)


def _catalog() -> None:
    customer = Customer.objects.create(external_id="shopper")
    now = timezone.now()
    Event.objects.bulk_create(
        Event(customer=customer, type=t, item_external_id=i, occurred_at=now - timedelta(hours=h))
        for i, t, h in [("sku-a", "purchase", 1), ("sku-b", "view", 2), ("sku-b", "view", 3)]
    )
    model_train(algorithm=Algorithm.POPULARITY)
    profiled_customer(external_id="cust-a")
    for name in ("banner", "coupon"):
        OfferFactory(name=name, placements=["home"])


class Storefront:
    def __init__(self, base: str, raw_key: str) -> None:
        self.base = base
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Api-Key {raw_key}"

    def up(self) -> bool:
        try:
            return self.session.get(self.base + "/me", timeout=30).ok
        except requests.RequestException:
            return False

    def call(self, method: str, path: str, body=None, *, expect: int = 200) -> dict:
        response = self.session.request(method, self.base + path, json=body, timeout=10)
        assert response.status_code == expect, (path, response.status_code, response.text)
        return response.json()

    def recommendations(self, customer: str) -> list[str]:
        body = self.call("get", f"/customers/{customer}/recommendations")
        return [item["id"] for item in body["items"]]

    def rank_and_reward(self) -> str:
        ranked = self.call("post", "/offers/rank", {"customer_id": "cust-a", "placement": "home"})
        assert len(ranked["ranking"]) == 2
        rewarded = self.call(
            "post", "/offers/reward", {"event_id": ranked["event_id"], "reward": 1}
        )
        assert rewarded["status"] == "recorded"
        return ranked["event_id"]

    def assign(self, customer: str) -> str:
        body = self.call("post", "/experiments/banner/assign", {"customer_id": customer})
        assert body["in_experiment"] is True, body
        return body["variant"]

    def event(self, customer: str) -> str:
        event_id = str(uuid.uuid4())
        body = {"event_id": event_id, "customer_id": customer, "type": "view", "item_id": "sku-a"}
        assert self.call("post", "/events", body, expect=202)["accepted"] == 1
        return event_id


def test_with_redis_down_the_hot_paths_answer_from_fallbacks_and_catch_up_after(
    persistent_redis, settings
):
    _catalog()
    _, raw = api_key_create(
        name="storefront",
        scopes=["events:write", "recommendations:read", "offers:read", "offers:write"]
        + ["experiments:read", "experiments:write", "experiments:assign"],
    )
    port = free_port()
    env = server_env(database_url=shared_database_url(), redis_url=persistent_redis.url())
    server = gunicorn_start(env=env, port=port, workers=1)
    # This process flushes the buffers as beat's tasks would, on the same Redis.
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": persistent_redis.url()}
    }
    try:
        shop = Storefront(f"http://127.0.0.1:{port}/api/v1", raw)
        wait_for(shop.up, timeout=90)
        shop.call(
            "post",
            "/experiments",
            {
                "key": "banner",
                "variants": [{"key": "control", "weight": 1}, {"key": "red", "weight": 1}],
                "metric": {"event_type": "purchase", "window_days": 7},
                "allocation": "fixed",
            },
            expect=201,
        )
        shop.call("post", "/experiments/banner/start")

        # Redis up: served, buffered in Redis (not flushed yet when it crashes).
        served = shop.recommendations("c-1")
        assert len(served) >= 2
        before = {"decision": shop.rank_and_reward(), "variant": shop.assign("c-1")}
        before["event"] = shop.event("c-1")
        assert OfferDecision.objects.count() == 0  # still in the Redis buffer
        assert Exposure.objects.count() == 0

        persistent_redis.kill()

        # Redis down: every answer from a fallback, no error.
        assert shop.recommendations("c-1") == served  # PostgreSQL's lists
        assert shop.recommendations("c-2") == served
        during = {"decision": shop.rank_and_reward()}  # decision and reward into PostgreSQL
        decision = OfferDecision.objects.get(event_id=during["decision"])
        assert (decision.reward, decision.reward_source) == (1.0, "api")
        during["variant"] = shop.assign("c-2")  # the hash decides; no exposure logged
        assert shop.assign("c-1") == before["variant"]  # sticky without Redis
        during["events"] = [shop.event("c-2") for _ in range(3)]
        assert Event.objects.filter(event_id__in=during["events"]).count() == 3

        persistent_redis.start()
        time.sleep(BREAKER_SECONDS + 0.2)  # the circuit breakers let Redis be tried again

        # Redis back: new traffic is buffered again, and the outage is caught up.
        assert shop.recommendations("c-2") == served
        after = {"decision": shop.rank_and_reward()}
        assert shop.assign("c-2") == during["variant"]  # same variant, now logged
        shop.assign("c-3")
        result = offer_log_process()
        assert result.flushed == 2  # the one buffered before the crash (AOF) and the new one
        assert set(OfferDecision.objects.values_list("event_id", flat=True)) == {
            uuid.UUID(before["decision"]),
            uuid.UUID(during["decision"]),
            uuid.UUID(after["decision"]),
        }
        assert set(OfferDecision.objects.values_list("reward", flat=True)) == {1.0}
        flushed = exposures_flush()
        assert flushed.stored == 3
        assert sorted(Exposure.objects.values_list("customer__external_id", flat=True)) == [
            "c-1",
            "c-2",
            "c-3",
        ]
        while features_update_pending().events:  # the beat-run consumer folds the outage in
            pass
        features = CustomerFeatures.objects.get(customer__external_id="c-2")
        assert features.state["counts"] == {"view": 3}
    finally:
        stop_group(server)

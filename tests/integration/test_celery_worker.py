from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from marketing.services import BEAT_HEARTBEAT_KEY
from marketing.tasks import beat_heartbeat_task
from profiles.models import Customer, Event
from recommender.models import ModelStatus, ModelVersion
from recommender.tasks import model_train_all_task
from tests.helpers import wait_for

pytestmark = pytest.mark.integration


def _events():
    customer = Customer.objects.create(external_id="c1")
    now = timezone.now()
    rows = [("sku-a", "purchase", 1), ("sku-b", "view", 2), ("sku-b", "view", 3)]
    Event.objects.bulk_create(
        Event(customer=customer, type=t, item_external_id=i, occurred_at=now - timedelta(hours=h))
        for i, t, h in rows
    )


def test_worker_retrains_the_popularity_model(celery_worker_process):
    _events()
    model_train_all_task.delay()
    version = wait_for(
        lambda: ModelVersion.objects.filter(status=ModelStatus.READY, is_active=True).first()
    )
    assert version.algorithm == "popularity"
    assert version.artifact["item_ids"] == ["sku-a", "sku-b"]
    assert version.n_interactions == 3


def test_healthz_sees_the_worker(client, celery_worker_process):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["checks"] == {"database": True, "redis": True, "celery": True}
    assert celery_worker_process in body["celery_workers"]


def test_beat_heartbeat_runs_on_the_worker(celery_worker_process):
    assert cache.get(BEAT_HEARTBEAT_KEY) is None
    beat_heartbeat_task.delay()
    seen = wait_for(lambda: cache.get(BEAT_HEARTBEAT_KEY))
    assert seen.startswith(str(timezone.now().year))

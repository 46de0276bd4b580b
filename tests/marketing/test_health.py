from django.core.cache import cache

from marketing.services import BEAT_HEARTBEAT_KEY, beat_heartbeat_record


def test_healthz_is_public_and_fails_without_a_celery_worker(client, db):
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert body["checks"] == {"database": True, "redis": True, "celery": False}
    assert body["celery_workers"] == []


def test_beat_heartbeat_is_reported(client, db):
    at = beat_heartbeat_record()
    assert cache.get(BEAT_HEARTBEAT_KEY) == at
    assert client.get("/healthz").json()["beat_last_seen"] == at

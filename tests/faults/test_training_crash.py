"""A Celery worker SIGKILLed in the middle of a model training (issue #11, faults). The
campaign-send half of that fault is tests/campaigns/test_dispatch_crash.py (1,000 recipients,
worker killed after 300: every message sent exactly once).

The training is slowed by RECOMMENDER_TRAINING_STEP_DELAY_SECONDS (a documented test hook)
so the kill lands after its lists and model file are written but before it is recorded and
activated. The served version must stay the previous one; the next worker to start marks the
interrupted version and its job failed; a retrain then completes and is served."""

import os
import signal
import threading
import uuid

import psycopg
import pytest
from django.db import connection, transaction
from django.db.models.signals import post_save

from marketing.celery import app as celery_app
from marketing.models import Job
from marketing.simulation.load import store_simulate
from marketing.simulation.store import StoreConfig
from recommender.models import Algorithm, ModelStatus, ModelVersion, RecommendationList
from recommender.services import model_train_request
from recommender.training import (
    INTERRUPTED_ERROR,
    TRAINING_LOCK,
    _training_locked,
    model_train,
    trainings_fail_interrupted,
)
from tests.faults.conftest import celery_worker_start, shared_database_url, stop_group
from tests.helpers import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

TINY_STORE = StoreConfig(customers=120, items=30, days=14, seed=5)


def _served() -> ModelVersion:
    return ModelVersion.objects.get(algorithm=Algorithm.EASE, is_active=True)


def test_a_worker_killed_mid_training_activates_nothing_and_a_retrain_succeeds(tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    store_simulate(config=TINY_STORE, reset=True)
    previous = model_train(algorithm=Algorithm.EASE)
    assert _served() == previous
    env = {
        **os.environ,
        "DATABASE_URL": shared_database_url(),
        "DJANGO_CONN_MAX_AGE": "0",
        "DJANGO_MEDIA_ROOT": settings.MEDIA_ROOT,
    }
    with celery_app.connection_for_write() as conn:
        conn.default_channel.client.delete("recommender", "unacked", "unacked_index")
    workers = [
        celery_worker_start(
            env={**env, "RECOMMENDER_TRAINING_STEP_DELAY_SECONDS": "1"},
            queues="recommender",
            name=f"train-1-{uuid.uuid4().hex[:6]}@localhost",
        )
    ]
    try:
        job = model_train_request(algorithm=Algorithm.EASE)
        # Lists and model file written, the version not yet recorded nor served.
        wait_for(lambda: Job.objects.get(pk=job.pk).done >= 95, timeout=60, interval=0.1)
        os.killpg(workers[0].pid, signal.SIGKILL)
        workers[0].wait()

        interrupted = ModelVersion.objects.exclude(pk=previous.pk).get()
        assert interrupted.status == ModelStatus.TRAINING
        assert RecommendationList.objects.filter(model_version=interrupted).exists()  # mid-way
        assert _served() == previous  # nothing half-trained is served

        workers.append(
            celery_worker_start(
                env=env, queues="recommender", name=f"train-2-{uuid.uuid4().hex[:6]}@localhost"
            )
        )
        interrupted.refresh_from_db()  # the new worker's start marked it
        assert (interrupted.status, interrupted.error) == (ModelStatus.FAILED, INTERRUPTED_ERROR)
        job.refresh_from_db()
        assert (job.status, job.error) == ("failed", INTERRUPTED_ERROR)
        assert _served() == previous

        retrain = model_train_request(algorithm=Algorithm.EASE)
        wait_for(lambda: Job.objects.get(pk=retrain.pk).status == "done", timeout=60)
    finally:
        connection.close()
        for worker in workers:
            stop_group(worker)

    retrained = ModelVersion.objects.get(pk=Job.objects.get(pk=retrain.pk).result["version"])
    assert retrained.status == ModelStatus.READY
    assert retrained.params["job_id"] == retrain.pk
    assert _served().status == ModelStatus.READY
    assert _served() != interrupted
    assert set(ModelVersion.objects.values_list("status", flat=True)) == {"ready", "failed"}


def test_only_versions_nobody_trains_are_marked_interrupted():
    from tests.recommender.factories import ModelVersionFactory

    job = Job.objects.create(kind="training ease", status="running")
    dead = ModelVersionFactory(algorithm="ease", status="training", params={"job_id": job.pk})
    live = ModelVersionFactory(algorithm="ease", status="training")
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"], dbname=db["NAME"]
    ) as trainer:  # another session training `live`
        trainer.execute("SELECT pg_advisory_lock(%s, %s)", [TRAINING_LOCK, live.pk])

        assert trainings_fail_interrupted() == 1
        assert trainings_fail_interrupted() == 0  # idempotent

    dead.refresh_from_db()
    live.refresh_from_db()
    job.refresh_from_db()
    assert (dead.status, dead.error) == ("failed", INTERRUPTED_ERROR)
    assert live.status == "training"
    assert (job.status, job.error) == ("failed", INTERRUPTED_ERROR)


def test_a_training_is_locked_from_the_moment_its_version_is_visible(settings, tmp_path):
    """trainings_fail_interrupted run (in another session) as soon as the new version commits
    finds it locked and leaves it alone: no gap between the row and the lock."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    store_simulate(config=TINY_STORE, reset=True)
    marked: list[int] = []

    def sweep() -> None:
        try:
            marked.append(trainings_fail_interrupted())
        finally:
            connection.close()

    def on_created(sender, instance, created, **kwargs) -> None:
        if created and instance.status == ModelStatus.TRAINING:

            def in_another_session() -> None:
                thread = threading.Thread(target=sweep)
                thread.start()
                thread.join()

            transaction.on_commit(in_another_session)

    post_save.connect(on_created, sender=ModelVersion)
    try:
        version = model_train(algorithm=Algorithm.EASE)
    finally:
        post_save.disconnect(on_created, sender=ModelVersion)
    assert marked == [0]
    version.refresh_from_db()
    assert version.status == ModelStatus.READY


def _locked_then_connection_lost() -> None:
    """A training under its lock whose connection is killed, then fails on its own."""
    db = connection.settings_dict
    with _training_locked(algorithm="ease", params={}):
        connection.ensure_connection()
        pid = connection.connection.info.backend_pid
        with psycopg.connect(
            host=db["HOST"] or "127.0.0.1",
            port=db["PORT"] or 5432,
            user=db["USER"],
            dbname=db["NAME"],
            autocommit=True,
        ) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        raise RuntimeError("the training's own error")


def test_a_lost_connection_does_not_hide_the_trainings_own_error():
    """The session's advisory lock went with its connection; the unlock in `finally` must not
    raise over the error that stopped the training."""
    try:
        with pytest.raises(RuntimeError, match="the training's own error"):
            _locked_then_connection_lost()
    finally:
        connection.close()
    assert trainings_fail_interrupted() == 1  # nobody holds its lock any more

"""Training and activating recommendation models."""

import logging
import time

from django.db import connection, transaction
from django.utils import timezone

from marketing.common.errors import ApplicationError
from marketing.models import Job
from marketing.services import job_create
from recommender.algorithms.popularity import EVENT_WEIGHTS, popularity_fit
from recommender.errors import TrainingDataError
from recommender.models import Algorithm, ModelStatus, ModelVersion

logger = logging.getLogger(__name__)

POPULARITY_WINDOW_DAYS = 90


def model_train_popularity(*, half_life_days: float = 14.0) -> ModelVersion:
    """Train the popularity fallback on the last 90 days of events and make it active."""
    started = time.perf_counter()
    # Aggregate in SQL to (item, type, day) groups: training reads a few thousand rows
    # instead of millions of events. "Now" is the newest event, so a replayed history
    # trains the same as a live one.
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH last AS (SELECT max(occurred_at) AS t FROM profiles_event)
            SELECT e.item_external_id, e.type,
                   floor(extract(epoch FROM last.t - e.occurred_at) / 86400) AS age_days,
                   count(*)
            FROM profiles_event e, last
            WHERE e.item_external_id <> '' AND e.type = ANY(%s)
              AND e.occurred_at > last.t - make_interval(days => %s)
            GROUP BY 1, 2, 3
            """,
            [list(EVENT_WEIGHTS), POPULARITY_WINDOW_DAYS],
        )
        rows = cursor.fetchall()
    if not rows:
        raise TrainingDataError("No item events in the last 90 days.")
    model = popularity_fit(
        item_ids=[r[0] for r in rows],
        event_types=[r[1] for r in rows],
        ages_days=[float(r[2]) for r in rows],
        counts=[int(r[3]) for r in rows],
        half_life_days=half_life_days,
    )
    version = ModelVersion(
        algorithm=Algorithm.POPULARITY,
        params={"half_life_days": half_life_days, "window_days": POPULARITY_WINDOW_DAYS},
    )
    with transaction.atomic():
        ModelVersion.objects.filter(algorithm=Algorithm.POPULARITY, is_active=True).update(
            is_active=False
        )
        version.status = ModelStatus.READY
        version.is_active = True
        version.artifact = {"item_ids": model.item_ids, "scores": model.scores}
        version.n_items = len(model.item_ids)
        version.n_interactions = sum(int(r[3]) for r in rows)
        version.training_seconds = round(time.perf_counter() - started, 3)
        version.trained_at = timezone.now()
        version.save()
    logger.info(
        "model trained",
        extra={"algorithm": "popularity", "version": version.pk, "items": version.n_items},
    )
    return version


def model_train_request(*, algorithm: str, user=None) -> Job:
    """Start a training from the UI: a Job row the page polls, the task queued on commit."""
    from recommender.tasks import model_train_task

    if algorithm not in Algorithm.values:
        raise ApplicationError(f"Unknown algorithm '{algorithm}'.", code="unknown_algorithm")
    job = job_create(kind=f"training {algorithm}", total=100, user=user)
    transaction.on_commit(lambda: model_train_task.delay(algorithm=algorithm, job_id=job.pk))
    return job

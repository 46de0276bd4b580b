"""Training and activating recommendation models."""

import logging
import time

from django.db import connection, transaction
from django.utils import timezone

from recommender.algorithms.popularity import EVENT_WEIGHTS, popularity_fit
from recommender.models import Algorithm, ModelStatus, ModelVersion

logger = logging.getLogger(__name__)

POPULARITY_WINDOW_DAYS = 90


def model_train_popularity(*, half_life_days: float = 14.0) -> ModelVersion:
    """Train the popularity fallback on the last 90 days of events and make it active."""
    version = ModelVersion.objects.create(
        algorithm=Algorithm.POPULARITY,
        params={"half_life_days": half_life_days, "window_days": POPULARITY_WINDOW_DAYS},
    )
    started = time.perf_counter()
    try:
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
        model = popularity_fit(
            item_ids=[r[0] for r in rows],
            event_types=[r[1] for r in rows],
            ages_days=[float(r[2]) for r in rows],
            counts=[int(r[3]) for r in rows],
            half_life_days=half_life_days,
        )
    except Exception as exc:
        ModelVersion.objects.filter(pk=version.pk).update(
            status=ModelStatus.FAILED, error=str(exc)[:5000]
        )
        raise
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


def model_train_all() -> list[ModelVersion]:
    """Retrain every algorithm that exists so far."""
    return [model_train_popularity()]

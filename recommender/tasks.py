import logging

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from marketing.celery import Queue

logger = logging.getLogger(__name__)


@shared_task(
    name="recommender.model_train",
    queue=Queue.RECOMMENDER.value,
    soft_time_limit=1800,
    time_limit=2400,
    autoretry_for=(),
)
def model_train_task(*, algorithm: str, job_id: int) -> int | None:
    """Train one algorithm for a marketer's request; the Job row shows the progress. Not
    retried: a failed training is recorded on the job and the version."""
    from recommender.training import model_train_job

    version = model_train_job(algorithm=algorithm, job_id=job_id)
    return None if version is None else version.pk


@shared_task(
    name="recommender.model_train_all",
    queue=Queue.RECOMMENDER.value,
    soft_time_limit=1800,
    time_limit=2400,
    autoretry_for=(),
)
def model_train_all_task() -> list[int]:
    from recommender.training import model_train_all

    versions = model_train_all()
    ids = [v.pk for v in versions]
    logger.info("retrained models", extra={"versions": ids})
    return ids


@worker_ready.connect
def _trainings_recover(**kwargs) -> None:
    """A worker starting (after a crash, a deploy): trainings its dead predecessor left
    'training' are marked failed, with their jobs."""
    from django.db import connection

    from recommender.training import trainings_fail_interrupted

    try:
        trainings_fail_interrupted()
    except Exception:  # a worker must start even when the database is not there yet
        logger.exception("interrupted trainings not checked")
    finally:
        connection.close()  # the main process keeps no connection (the pool's are its own)


@shared_task(name="recommender.retrain_if_needed", queue=Queue.RECOMMENDER.value)
def retrain_if_needed_task() -> bool:
    """Every 10 minutes: mark failed the trainings of workers that died (see
    `trainings_fail_interrupted`), then retrain once enough new events have arrived since
    the last one."""
    from recommender.training import events_since_last_training, trainings_fail_interrupted

    trainings_fail_interrupted()
    new = events_since_last_training()
    if new < settings.RECOMMENDER_RETRAIN_AFTER_EVENTS:
        return False
    logger.info("retraining on new events", extra={"new_events": new})
    model_train_all_task.delay()
    return True


@shared_task(name="recommender.similar_items_refresh", queue=Queue.RECOMMENDER.value)
def similar_items_refresh_task() -> int:
    """Every 5 minutes: refresh the related-item lists of items touched by new events."""
    from recommender.training import similar_items_refresh

    return similar_items_refresh().touched_items


@shared_task(
    name="recommender.affinity_segment_build",
    queue=Queue.RECOMMENDER.value,
    soft_time_limit=1800,
    time_limit=2400,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(),
)
def affinity_segment_build_task(
    *, job_id: int, request: dict, user_id: int | None = None
) -> int | None:
    """Score every customer for an item or an attribute expression and save the top ones
    as a segment; idempotent (a redelivered job finishes with the segment it made)."""
    from django.contrib.auth import get_user_model

    from recommender.segment_affinity import AffinityRequest, affinity_segment_build

    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    segment = affinity_segment_build(job_id=job_id, request=AffinityRequest(**request), user=user)
    logger.info("affinity segment task", extra={"job": job_id, "segment": segment and segment.pk})
    return None if segment is None else segment.pk


OFFER_LOG_SCHEDULED_FLAG = "offers:log-scheduled"
OFFER_LEARN_SCHEDULED_FLAG = "offers:learn-scheduled"


@shared_task(
    name="recommender.offer_log_process",
    queue=Queue.OFFERS.value,
    soft_time_limit=50,
    time_limit=120,
)
def offer_log_process_task() -> dict:
    """Every 5 s (and soon after offer events are ingested): buffered decisions into
    PostgreSQL, rewards onto them, expired waits settled. Safe to run twice."""
    from recommender.offers_log import offer_log_process

    result = offer_log_process()
    if result.rewards or result.event_rewards or result.settled:
        offer_policy_learn_schedule()
    return result.__dict__


def offer_log_process_schedule() -> None:
    """Hook run when ingested events commit: wake the log processor (offer_click and
    purchase rewards) at most once a second, after the events settle."""
    from django.core.cache import cache

    from recommender.offers_log import EVENT_SETTLE_SECONDS

    if cache.add(OFFER_LOG_SCHEDULED_FLAG, 1, timeout=1):
        offer_log_process_task.apply_async(countdown=EVENT_SETTLE_SECONDS + 0.5)


def offer_policy_learn_schedule() -> None:
    from django.core.cache import cache

    if cache.add(OFFER_LEARN_SCHEDULED_FLAG, 1, timeout=5):
        offer_policy_learn_task.delay()


@shared_task(
    name="recommender.offer_policy_learn",
    queue=Queue.OFFERS.value,
    soft_time_limit=50,
    time_limit=120,
)
def offer_policy_learn_task() -> dict:
    """Every 15 s (and after new rewards): rewarded decisions into the served policy."""
    from recommender.offers_learning import offer_policy_learn

    result = offer_policy_learn()
    if result.learned:
        logger.info("offer policy updated", extra=result.__dict__)
    return result.__dict__


@shared_task(
    name="recommender.offer_evaluation_run",
    queue=Queue.RECOMMENDER.value,
    soft_time_limit=1800,
    time_limit=2400,
    autoretry_for=(),
)
def offer_evaluation_run_task(*, job_id: int) -> None:
    """Offline evaluation of candidate settings; the Job row shows the progress."""
    from recommender.offers_learning import offer_evaluation_run

    offer_evaluation_run(job_id=job_id)

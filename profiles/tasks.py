import logging
import time

from celery import shared_task
from django.core.cache import cache

logger = logging.getLogger(__name__)

SCHEDULED_FLAG = "profiles:features:scheduled"
TIME_BUDGET_SECONDS = 20.0


def features_update_schedule() -> None:
    """Wake the features consumer, at most once a second however many batches arrive."""
    if cache.add(SCHEDULED_FLAG, 1, timeout=1):
        features_update_task.apply_async(countdown=0.2)


@shared_task(name="profiles.features_update", soft_time_limit=60, time_limit=120)
def features_update_task() -> int:
    """Drain the feature backlog for up to 20 s, then hand over to a fresh task if more is
    left. Safe to run twice: each queued event is folded in exactly once."""
    from profiles.services import features_backlog_size, features_update_pending

    started = time.monotonic()
    folded = 0
    while time.monotonic() - started < TIME_BUDGET_SECONDS:
        result = features_update_pending()
        if result.locked_out:
            # Another consumer is at it; look again shortly in case it just finished.
            features_update_task.apply_async(countdown=1)
            return folded
        folded += result.events
        if result.events == 0:
            break
    else:
        if features_backlog_size():
            features_update_task.apply_async()
    logger.info("features updated", extra={"events": folded})
    return folded


@shared_task(name="profiles.features_rebuild", soft_time_limit=3300, time_limit=3600)
def features_rebuild_task(repair: bool = True) -> dict:
    """Nightly: recompute features from the history, report and repair any drift."""
    from dataclasses import asdict

    from marketing.services import job_create, job_finish, job_start
    from profiles.services import features_rebuild

    job = job_create(kind="features_rebuild")
    job_start(job_id=job.pk, message="recomputing features from the event history")
    report = features_rebuild(repair=repair)
    message = f"{report.customers} customers, {report.drifted} with drift"
    job_finish(job_id=job.pk, result=asdict(report), message=message)
    if report.drifted:
        logger.warning("feature drift found", extra=asdict(report))
    return asdict(report)


from profiles.import_tasks import *  # noqa: E402, F401, F403
from profiles.segments.import_tasks import *  # noqa: E402, F401, F403
from profiles.segments.tasks import *  # noqa: E402, F401, F403
from profiles.segments.tasks_clusters import *  # noqa: E402, F401, F403

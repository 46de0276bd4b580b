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

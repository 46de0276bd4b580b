import logging
import time

from celery import shared_task
from django.core.cache import cache

from marketing import services

logger = logging.getLogger(__name__)


@shared_task(name="marketing.beat_heartbeat", ignore_result=True)
def beat_heartbeat_task() -> None:
    at = services.beat_heartbeat_record()
    logger.info("beat heartbeat", extra={"at": at})


ROLLUPS_SCHEDULED_FLAG = "marketing:rollups:scheduled"
ROLLUPS_TIME_BUDGET_SECONDS = 20.0


def rollup_events_consume_schedule() -> None:
    """Wake the dashboard counter consumer, at most once a second however many batches arrive
    (registered with profiles' events_ingest as a hook run on commit). The countdown lets the
    batch settle (rollups.SETTLE_SECONDS) so one run counts it."""
    from marketing.rollups import SETTLE_SECONDS

    if cache.add(ROLLUPS_SCHEDULED_FLAG, 1, timeout=1):
        rollup_events_consume_task.apply_async(countdown=SETTLE_SECONDS + 0.5)


@shared_task(name="marketing.rollup_events_consume", soft_time_limit=60, time_limit=120)
def rollup_events_consume_task() -> int:
    """New events into the Redis minute counters for up to 20 s, then a fresh task if more is
    left. Safe to run twice: the watermark moves with the counts in one MULTI."""
    from marketing.rollups import rollup_events_consume

    started = time.monotonic()
    counted = 0
    while time.monotonic() - started < ROLLUPS_TIME_BUDGET_SECONDS:
        result = rollup_events_consume()
        if result.locked_out:
            return counted
        counted += result.events
        if not result.more:
            return counted
    rollup_events_consume_task.apply_async()
    return counted


@shared_task(name="marketing.rollups_flush", soft_time_limit=50, time_limit=110)
def rollups_flush_task() -> None:
    """Redis minute counters into the rollup tables (beat every minute; idempotent)."""
    from marketing.rollups import rollups_flush

    result = rollups_flush()
    logger.info("rollups flushed", extra={"minutes": result.minutes, "rows": result.rows})

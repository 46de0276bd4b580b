import logging

from celery import shared_task

from marketing import services

logger = logging.getLogger(__name__)


@shared_task(name="marketing.beat_heartbeat", ignore_result=True)
def beat_heartbeat_task() -> None:
    at = services.beat_heartbeat_record()
    logger.info("beat heartbeat", extra={"at": at})

import logging

from celery import shared_task

from marketing.celery import Queue

logger = logging.getLogger(__name__)


@shared_task(
    name="recommender.model_train_all",
    queue=Queue.RECOMMENDER.value,
    soft_time_limit=1800,
    time_limit=2400,
)
def model_train_all_task() -> list[int]:
    from recommender.services import model_train_all

    versions = model_train_all()
    ids = [v.pk for v in versions]
    logger.info("retrained models", extra={"versions": ids})
    return ids

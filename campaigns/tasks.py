"""Celery entry points of dispatch (campaigns/lifecycle.py and campaigns/dispatch.py hold
the logic). Each imports its
service in the body: dispatch enqueues these tasks, so a top-level import would be a cycle."""

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="campaigns.campaign_dispatch_page")
def campaign_dispatch_page_task(campaign_id: int, after_pk: int) -> None:
    from campaigns.lifecycle import campaign_dispatch_page

    count = campaign_dispatch_page(campaign_id=campaign_id, after_pk=after_pk)
    logger.info("campaign page", extra={"campaign": campaign_id, "after": after_pk, "n": count})


@shared_task(name="campaigns.messages_send_batch", soft_time_limit=240, time_limit=300)
def messages_send_batch_task(campaign_id: int, customer_ids: list[int]) -> None:
    from campaigns.dispatch import messages_send_batch

    messages_send_batch(campaign=campaign_id, customer_ids=customer_ids)


@shared_task(name="campaigns.message_send")
def message_send_task(message_id: int) -> None:
    from campaigns.dispatch import message_send

    status = message_send(message_id=message_id)
    logger.info("message retried", extra={"message": message_id, "status": status})


@shared_task(name="campaigns.campaigns_sweep", soft_time_limit=120, time_limit=180)
def campaigns_sweep_task() -> None:
    """Finish what crashed workers left (beat, every minute; campaigns/recovery.py)."""
    from campaigns.recovery import campaigns_sweep

    result = campaigns_sweep()
    logger.info("campaign sweep", extra=result.__dict__)


@shared_task(name="campaigns.campaigns_launch_due")
def campaigns_launch_due_task() -> None:
    from campaigns.lifecycle import campaigns_launch_due

    launched = campaigns_launch_due()
    if launched:
        logger.info("scheduled campaigns launched", extra={"count": launched})


@shared_task(name="campaigns.conversions_attribute", soft_time_limit=60, time_limit=120)
def conversions_attribute_task() -> None:
    """Credit new goal events to the messages that led to them (beat, every minute); a full
    batch hands over to a fresh task."""
    from campaigns.conversions import conversions_attribute_new

    result = conversions_attribute_new()
    if result.more:
        conversions_attribute_task.apply_async()

"""Celery entry points of dispatch (campaigns/lifecycle.py and campaigns/dispatch.py hold
the logic). Each imports its
service in the body: dispatch enqueues these tasks, so a top-level import would be a cycle."""

import logging
import time

from celery import shared_task
from django.core.cache import cache

logger = logging.getLogger(__name__)


@shared_task(name="campaigns.campaign_dispatch_page")
def campaign_dispatch_page_task(campaign_id: int, after_pk: int) -> None:
    from campaigns.lifecycle import campaign_dispatch_page

    count = campaign_dispatch_page(campaign_id=campaign_id, after_pk=after_pk)
    logger.info("campaign page", extra={"campaign": campaign_id, "after": after_pk, "n": count})


@shared_task(name="campaigns.messages_send_batch", soft_time_limit=240, time_limit=300)
def messages_send_batch_task(
    campaign_id: int, customer_ids: list[int], journey_entry_id: int | None = None
) -> None:
    from campaigns.dispatch import messages_send_batch

    messages_send_batch(
        campaign=campaign_id, customer_ids=customer_ids, journey_entry_id=journey_entry_id
    )


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


# --- journeys (campaigns/journeys.py) -------------------------------------------------------

JOURNEYS_SCHEDULED_FLAG = "campaigns:journeys:scheduled"
JOURNEYS_TIME_BUDGET_SECONDS = 20.0


def journeys_consume_schedule() -> None:
    """Wake the journey consumer, at most once a second however many batches arrive
    (registered with profiles' events_ingest as a hook run on commit)."""
    if cache.add(JOURNEYS_SCHEDULED_FLAG, 1, timeout=1):
        journeys_consume_task.apply_async(countdown=0.2)


@shared_task(name="campaigns.journeys_consume", soft_time_limit=60, time_limit=120)
def journeys_consume_task() -> int:
    """New trigger events into journey entries for up to 20 s, then a fresh task if more is
    left. Safe to run twice: entries are unique per (campaign, customer, trigger time)."""
    from campaigns.journeys import journey_events_consume

    started = time.monotonic()
    entries = 0
    while time.monotonic() - started < JOURNEYS_TIME_BUDGET_SECONDS:
        result = journey_events_consume()
        if result.locked_out:
            journeys_consume_task.apply_async(countdown=1)
            break
        entries += result.entries
        if not result.more:
            break
    else:
        journeys_consume_task.apply_async()
    return entries


@shared_task(name="campaigns.journey_entries_decide", soft_time_limit=60, time_limit=120)
def journey_entries_decide_task() -> None:
    """Decide the due journey entries (beat every minute, and countdowns for due times)."""
    from campaigns.journeys import journey_entries_decide_due

    started = time.monotonic()
    while time.monotonic() - started < JOURNEYS_TIME_BUDGET_SECONDS:
        result = journey_entries_decide_due()
        if not result.more:
            return
    journey_entries_decide_task.apply_async()


@shared_task(name="campaigns.conversions_attribute", soft_time_limit=60, time_limit=120)
def conversions_attribute_task() -> None:
    """Credit new goal events to the messages that led to them (beat, every minute); a full
    batch hands over to a fresh task."""
    from campaigns.conversions import conversions_attribute_new

    result = conversions_attribute_new()
    if result.more:
        conversions_attribute_task.apply_async()

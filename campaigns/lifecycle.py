"""A campaign's life: launch (draft or scheduled -> sending), the fan-out of its audience in
pages of DISPATCH_BATCH_SIZE customers, pause, resume, done. Each page's messages are sent by
`campaigns.dispatch.messages_send_batch` (see there for the at-most-once protocol)."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models.expressions import RawSQL
from django.utils import timezone

from campaigns.errors import (
    CampaignNotLaunchableError,
    CampaignNotReadyError,
    CampaignStatusError,
)
from campaigns.models import Campaign, CampaignStatus
from campaigns.selectors import campaign_qs_for_update
from campaigns.tasks import campaign_dispatch_page_task, messages_send_batch_task
from profiles.models import Customer
from profiles.segments.selectors import segment_member_ids_sql

logger = logging.getLogger(__name__)

LAUNCHABLE = (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED)


def campaign_launch(*, campaign: Campaign | int) -> Campaign:
    """draft or scheduled -> sending (row-locked), and the first page after commit."""
    pk = campaign.pk if isinstance(campaign, Campaign) else campaign
    with transaction.atomic():
        locked = campaign_qs_for_update().get(pk=pk)
        if locked.status not in LAUNCHABLE:
            raise CampaignNotLaunchableError(
                f"Campaign {locked.name!r} is {locked.status}; only a draft or scheduled "
                "campaign can be launched.",
                extra={"status": locked.status},
            )
        if locked.segment_id is None:
            raise CampaignNotReadyError("Choose an audience (segment) first.")
        if locked.template_id is None and not locked.variants.exists():
            raise CampaignNotReadyError("Choose a message template first.")
        locked.status = CampaignStatus.SENDING
        locked.started_at = timezone.now()
        locked.save(update_fields=["status", "started_at", "updated_at"])
        transaction.on_commit(lambda: campaign_dispatch_page_task.delay(pk, 0))
    logger.info("campaign launched", extra={"campaign": pk})
    return locked


def campaign_pause(*, campaign: Campaign | int) -> Campaign:
    """sending -> paused: pages and batches not yet run do nothing, retries wait."""
    return _campaign_transition(campaign, CampaignStatus.SENDING, CampaignStatus.PAUSED)


def campaign_resume(*, campaign: Campaign | int) -> Campaign:
    """paused -> sending, and the fan-out again from the first page: recipients already
    recorded are not decided or sent again, queued ones are sent."""
    resumed = _campaign_transition(campaign, CampaignStatus.PAUSED, CampaignStatus.SENDING)
    pk = resumed.pk
    transaction.on_commit(lambda: campaign_dispatch_page_task.delay(pk, 0))
    return resumed


def _campaign_transition(campaign: Campaign | int, source: str, target: str) -> Campaign:
    pk = campaign.pk if isinstance(campaign, Campaign) else campaign
    with transaction.atomic():
        locked = campaign_qs_for_update().get(pk=pk)
        if locked.status != source:
            raise CampaignStatusError(
                f"Campaign {locked.name!r} is {locked.status}, not {source}.",
                extra={"status": locked.status},
            )
        locked.status = target
        locked.save(update_fields=["status", "updated_at"])
    logger.info("campaign status", extra={"campaign": pk, "status": target})
    return locked


def campaigns_launch_due(*, now: Any = None) -> int:
    """Launch every scheduled campaign whose time has come (beat, every minute)."""
    now = now or timezone.now()
    due = Campaign.objects.filter(
        status=CampaignStatus.SCHEDULED, scheduled_at__lte=now
    ).values_list("pk", flat=True)
    launched = 0
    for pk in list(due):
        try:
            campaign_launch(campaign=pk)
        except (CampaignNotLaunchableError, CampaignNotReadyError) as exc:
            logger.warning(
                "scheduled campaign not launched", extra={"campaign": pk, "why": str(exc)}
            )
            continue
        launched += 1
    return launched


def campaign_audience_page(*, campaign: Campaign, after_pk: int, limit: int) -> list[int]:
    """The next `limit` audience customer pks above `after_pk` (rule segments evaluated now)."""
    if campaign.segment is None:
        return []
    sql, params = segment_member_ids_sql(segment=campaign.segment)
    members = RawSQL(sql, params)  # noqa: S611 - SQL compiled by the ORM, values as params
    return list(
        Customer.objects.filter(pk__in=members, pk__gt=after_pk, erased_at=None)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )


def campaign_dispatch_page(*, campaign_id: int, after_pk: int) -> int:
    """Enqueue one batch and the next page; on an empty page the campaign is done. A paused
    (or finished) campaign stops here. Returns the number of customers enqueued."""
    campaign = Campaign.objects.select_related("segment").get(pk=campaign_id)
    if campaign.status != CampaignStatus.SENDING:
        return 0
    pks = campaign_audience_page(
        campaign=campaign, after_pk=after_pk, limit=settings.DISPATCH_BATCH_SIZE
    )
    if not pks:
        campaign_finish(campaign_id=campaign_id)
        return 0
    messages_send_batch_task.delay(campaign_id, pks)
    campaign_dispatch_page_task.delay(campaign_id, pks[-1])
    return len(pks)


def campaign_finish(*, campaign_id: int) -> bool:
    """sending -> done once the whole audience is enqueued (retries may still be pending)."""
    now = timezone.now()
    changed = Campaign.objects.filter(pk=campaign_id, status=CampaignStatus.SENDING).update(
        status=CampaignStatus.DONE, finished_at=now, sent_at=now, updated_at=now
    )
    return bool(changed)

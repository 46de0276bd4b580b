"""The sweeper (beat, every minute): finishes what a crashed worker left behind.

A worker killed with SIGKILL leaves, besides the uncertain `sending` claims of the chunk in hand
(campaigns/dispatch.py), the tasks it had taken from the broker: acks are late, but Redis gives
an unacknowledged task back only after its visibility timeout (an hour). So a page of the
fan-out, or a whole batch, can be missing until then. The sweeper does not wait:

1. It settles stale claims with the provider (`messages_resolve_stale`) and sends the ones
   the provider never got (`message_send`).
2. A `sending` campaign that made no progress (no page of its fan-out claimed, no message
   sent or claimed, no change of the campaign) for CAMPAIGN_STALL_SECONDS lost its chain of
   pages: the audience
   members up to the highest one recorded that have no row get batches again (their batch
   died with the worker; members inside their quiet hours are left to their deferred batch),
   and the fan-out resumes after that member.
3. A campaign whose fan-out completed less than SWEEP_WINDOW ago (after that the broker has
   given the lost tasks back anyway) and that has been quiet as long gets batches for the
   audience members without a row, and `message_send` for `queued` rows whose retry is
   overdue.

A campaign acted on is touched (`updated_at`), so it is acted on at most once per stall time.
Journeys (trigger campaigns) stay `sending` until ended and have no fan-out: they are not
swept (their entries are decided by the journey runs), so the sweep's cost follows the
campaigns in flight, not every journey ever activated.

Cost per minute: stale claims through the partial index on `claimed_at` of `sending` rows;
per candidate campaign a few Redis reads and two index range probes over the last stall
time (see `_active_since`). Only a stalled campaign pays for the audience queries.

Everything it enqueues is idempotent (rows are unique per key, claims are atomic), so a false
alarm costs work, never a duplicate. One effect to know: within the window, a customer who
joined a rule segment after its campaign's fan-out is sent the campaign too (as the broker's
redelivery of a lost batch would).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Max, Q
from django.db.models.expressions import RawSQL
from django.utils import timezone

from campaigns.dispatch import _quiet_for, messages_resolve_stale
from campaigns.fanout import fanout_last_moved
from campaigns.lifecycle import campaign_fanout_restart
from campaigns.models import AudienceType, Campaign, CampaignStatus, Message, MessageStatus
from campaigns.tasks import message_send_task, messages_send_batch_task
from profiles.models import Customer
from profiles.segments.selectors import segment_member_ids_sql

logger = logging.getLogger(__name__)

# The broker's visibility timeout (CELERY_BROKER_TRANSPORT_OPTIONS).
SWEEP_WINDOW = timedelta(hours=1)
# The longest retry backoff (campaigns.providers.backoff_delay's cap): a `queued` row claimed
# longer ago than this plus the stall time has lost its retry task.
RETRY_BACKOFF_MAX = timedelta(seconds=600)


@dataclass(frozen=True)
class SweepResult:
    confirmed: int = 0
    requeued: int = 0
    lost: int = 0
    restarted: int = 0  # fan-outs run again
    rebatched: int = 0  # audience members enqueued again
    retried: int = 0  # overdue queued rows sent again


def _active_since(campaign: Campaign, since: Any) -> bool:
    """Whether the campaign moved after `since`: the campaign row changed, a page of its
    fan-out was claimed (campaigns/fanout.py), or one of its messages was sent or claimed.
    Each message probe is a range over a partial index (sent_at set; claimed_at of `sending`
    rows) holding only the last stall time's rows, never the campaign's whole history, so a
    sweep costs the same for a campaign of a hundred or of a million recipients."""
    marks = [
        campaign.updated_at,
        campaign.started_at,
        campaign.finished_at,
        fanout_last_moved(campaign_id=campaign.pk),
    ]
    if any(mark is not None and mark > since for mark in marks):
        return True
    messages = Message.objects.filter(campaign=campaign)
    return (
        messages.filter(sent_at__gt=since).exists()
        or messages.filter(status=MessageStatus.SENDING, claimed_at__gt=since).exists()
    )


def _unrecorded_members(campaign: Campaign, now: Any, *, up_to: int | None = None) -> list[int]:
    """Audience members (up to pk `up_to`) with no message row for the campaign, outside
    their quiet hours."""
    if campaign.segment is None:
        return []
    sql, params = segment_member_ids_sql(segment=campaign.segment)
    members = RawSQL(sql, params)  # noqa: S611 - SQL compiled by the ORM, values as params
    recorded = Message.objects.filter(campaign=campaign, channel=campaign.channel).values(
        "customer_id"
    )
    audience = Customer.objects.filter(pk__in=members, erased_at=None)
    if up_to is not None:
        audience = audience.filter(pk__lte=up_to)
    missing = audience.exclude(pk__in=recorded).order_by("pk").values_list("pk", "timezone")
    return [pk for pk, tz_name in missing if not _quiet_for(campaign, tz_name, now)]


def campaigns_sweep(*, now: Any = None) -> SweepResult:
    """One round of the sweeper (see the module docstring)."""
    now = now or timezone.now()
    stale = messages_resolve_stale(
        queryset=Message.objects.filter(status=MessageStatus.SENDING), now=now
    )
    for message_id in stale.requeued_ids:
        message_send_task.delay(message_id)
    stall = timedelta(seconds=settings.CAMPAIGN_STALL_SECONDS)
    restarted = rebatched = retried = 0
    candidates = (
        Campaign.objects.select_related("segment")
        .filter(
            Q(status=CampaignStatus.SENDING)
            | Q(status=CampaignStatus.DONE, finished_at__gte=now - SWEEP_WINDOW)
        )
        .exclude(audience_type=AudienceType.TRIGGER)
    )
    for campaign in candidates.order_by("pk"):
        if _active_since(campaign, now - stall):
            continue
        Campaign.objects.filter(pk=campaign.pk).update(updated_at=now)
        up_to = None
        if campaign.status == CampaignStatus.SENDING:
            up_to = (
                Message.objects.filter(campaign=campaign, channel=campaign.channel).aggregate(
                    last=Max("customer_id")
                )["last"]
                or 0
            )
            campaign_fanout_restart(campaign_id=campaign.pk, after_pk=up_to)
            restarted += 1
        missing = _unrecorded_members(campaign, now, up_to=up_to)
        for start in range(0, len(missing), settings.DISPATCH_BATCH_SIZE):
            batch = missing[start : start + settings.DISPATCH_BATCH_SIZE]
            messages_send_batch_task.delay(campaign.pk, batch)
        rebatched += len(missing)
        overdue = Message.objects.filter(
            Q(claimed_at=None) | Q(claimed_at__lt=now - stall - RETRY_BACKOFF_MAX),
            campaign=campaign,
            status=MessageStatus.QUEUED,
        ).exclude(pk__in=stale.requeued_ids)
        for message_id in overdue.values_list("pk", flat=True):
            message_send_task.delay(message_id)
            retried += 1
    result = SweepResult(
        confirmed=stale.confirmed,
        requeued=stale.requeued,
        lost=stale.lost,
        restarted=restarted,
        rebatched=rebatched,
        retried=retried,
    )
    if result != SweepResult():
        logger.warning("campaign sweep", extra=result.__dict__)
    return result

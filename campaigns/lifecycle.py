"""A campaign's life: launch (draft or scheduled -> sending), the fan-out of its audience in
pages of DISPATCH_BATCH_SIZE customers, pause, resume, done. Each page's messages are sent by
`campaigns.dispatch.messages_send_batch` (see there for the at-most-once protocol).

    campaign_launch(campaign=)   segment campaign: sending and the fan-out; trigger campaign
                                 (a journey, campaigns/journeys.py): activate, sending until
                                 paused or ended
    campaign_pause / campaign_resume / campaign_end (a journey's end)
    campaigns_launch_due()       beat, every minute: scheduled campaigns whose time has come,
                                 each occurrence of a recurring one, same-local-time campaigns
                                 as soon as their send time comes somewhere on earth

Scheduling, unscheduling and cancelling are in campaigns/services.py.

Same local time (schedule_type local_time): on the date of `scheduled_at` (in TIME_ZONE) at
`send_local_time` in each recipient's timezone. The campaign launches when that time comes in
the earliest timezone (UTC+14); dispatch defers each recipient until their own local time
(the quiet-hours deferral). A recipient whose local time had already passed when the campaign
launched (a late launch, or a timezone west of the ones the date was meant for) gets it at
once rather than not at all.

Recurring (schedule_type recurring): the campaign itself never sends. At each occurrence
(`scheduled_at`, then daily or weekly at the same wall-clock time in
CAMPAIGN_DEFAULT_TIMEZONE, until `recurrence_until`) the beat makes a child campaign (a copy
with `parent` set, named "<name> — <date>") and launches it, so every occurrence has its own
messages and report; the parent stays scheduled at its next occurrence, then is done.
"""

from __future__ import annotations

import logging
import zoneinfo
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from campaigns.dispatch_rules import local_time_launch_at, occurrence_due
from campaigns.errors import (
    CampaignNotLaunchableError,
    CampaignNotReadyError,
    CampaignStatusError,
)
from campaigns.fanout import audience_size_store, fanout_page_claim, fanout_reset
from campaigns.journeys import journey_entries_close, journey_entries_requeue
from campaigns.models import (
    AudienceType,
    Campaign,
    CampaignStatus,
    CampaignVariant,
    ScheduleType,
)
from campaigns.selectors import campaign_qs_for_update
from campaigns.tasks import campaign_dispatch_page_task, messages_send_batch_task
from profiles.models import Customer, EventType, Segment
from profiles.segments.selectors import segment_member_ids_sql

logger = logging.getLogger(__name__)

LAUNCHABLE = (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED)
# A same-local-time campaign launches up to 14 hours before its date's send time in UTC, and
# its date may start up to a day after `scheduled_at`: campaigns_launch_due looks this far.
LAUNCH_LOOKAHEAD = timedelta(days=2)


def _is_journey(campaign: Campaign) -> bool:
    return campaign.audience_type == AudienceType.TRIGGER


def campaign_launch_checks(campaign: Campaign) -> None:
    """Raise CampaignNotReadyError when the campaign cannot send: a segment campaign needs a
    segment, a journey a known trigger event; both need a template."""
    if _is_journey(campaign):
        if campaign.trigger_event_type not in EventType.values:
            raise CampaignNotReadyError("Choose the event that starts the journey first.")
    elif campaign.segment_id is None:
        raise CampaignNotReadyError("Choose an audience (segment) first.")
    if campaign.template_id is None and not campaign.variants.exists():
        raise CampaignNotReadyError("Choose a message template first.")


def campaign_launch(*, campaign: Campaign | int) -> Campaign:
    """draft or scheduled -> sending (row-locked). A segment campaign's first page is
    enqueued after commit; a journey is active from now on (only events after this moment
    enter it). A recurring campaign is not launched itself: its occurrences are."""
    pk = campaign.pk if isinstance(campaign, Campaign) else campaign
    with transaction.atomic():
        locked = campaign_qs_for_update().get(pk=pk)
        if locked.status not in LAUNCHABLE:
            raise CampaignNotLaunchableError(
                f"Campaign {locked.name!r} is {locked.status}; only a draft or scheduled "
                "campaign can be launched.",
                extra={"status": locked.status},
            )
        if locked.schedule_type == ScheduleType.RECURRING:
            raise CampaignNotReadyError(
                "A recurring campaign is scheduled, not sent: each occurrence is sent at its time."
            )
        campaign_launch_checks(locked)
        locked.status = CampaignStatus.SENDING
        locked.started_at = timezone.now()
        locked.save(update_fields=["status", "started_at", "updated_at"])
        if not _is_journey(locked):
            transaction.on_commit(
                lambda: campaign_fanout_restart(campaign_id=pk, after_pk=0, fresh=True)
            )
    logger.info("campaign launched", extra={"campaign": pk, "journey": _is_journey(locked)})
    return locked


def campaign_pause(*, campaign: Campaign | int) -> Campaign:
    """sending -> paused: pages and batches not yet run do nothing, retries wait."""
    return _campaign_transition(campaign, CampaignStatus.SENDING, CampaignStatus.PAUSED)


def campaign_resume(*, campaign: Campaign | int) -> Campaign:
    """paused -> sending, and the fan-out again from the first page: recipients already
    recorded are not decided or sent again, queued ones are sent. A journey's entries that
    fell due while paused are decided by the next due run (events that happened while it
    was paused did not enter it)."""
    resumed = _campaign_transition(campaign, CampaignStatus.PAUSED, CampaignStatus.SENDING)
    pk = resumed.pk
    if _is_journey(resumed):
        journey_entries_requeue(campaign_id=pk)
    else:
        transaction.on_commit(lambda: campaign_fanout_restart(campaign_id=pk, after_pk=0))
    return resumed


def campaign_fanout_restart(*, campaign_id: int, after_pk: int, fresh: bool = False) -> None:
    """A new chain of pages from `after_pk` (the cursor moved back so its pages are claimed;
    `fresh` at launch, see fanout_reset)."""
    fanout_reset(campaign_id=campaign_id, to_pk=after_pk, fresh=fresh)
    campaign_dispatch_page_task.delay(campaign_id, after_pk)


def campaign_end(*, campaign: Campaign | int) -> Campaign:
    """A journey (sending or paused) -> done: nobody enters any more, and entries not yet
    handed to dispatch are skipped. A segment campaign ends by itself (or is cancelled)."""
    pk = campaign.pk if isinstance(campaign, Campaign) else campaign
    now = timezone.now()
    with transaction.atomic():
        locked = campaign_qs_for_update().get(pk=pk)
        if not _is_journey(locked) or locked.status not in (
            CampaignStatus.SENDING,
            CampaignStatus.PAUSED,
        ):
            raise CampaignStatusError(
                f"Campaign {locked.name!r} is not an active or paused journey.",
                extra={"status": locked.status},
            )
        locked.status, locked.finished_at = CampaignStatus.DONE, now
        locked.save(update_fields=["status", "finished_at", "updated_at"])
        skipped = journey_entries_close(campaign_id=pk, now=now)
    logger.info("journey ended", extra={"campaign": pk, "skipped": skipped})
    return locked


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


def campaign_launch_at(campaign: Campaign) -> datetime | None:
    """When a scheduled campaign starts: `scheduled_at`, or for a same-local-time campaign
    the moment its send time comes first on earth."""
    at = campaign.scheduled_at
    if at is None:
        return None
    if campaign.schedule_type == ScheduleType.LOCAL_TIME and campaign.send_local_time:
        return local_time_launch_at(on=timezone.localtime(at).date(), at=campaign.send_local_time)
    return at


def campaigns_launch_due(*, now: datetime | None = None) -> int:
    """Launch every scheduled campaign whose time has come and the due occurrence of every
    recurring one (beat, every minute). Returns how many campaigns started sending."""
    now = now or timezone.now()
    candidates = Campaign.objects.filter(
        status=CampaignStatus.SCHEDULED, scheduled_at__lte=now + LAUNCH_LOOKAHEAD
    ).order_by("scheduled_at", "pk")
    launched = 0
    for candidate in candidates:
        launch_at = campaign_launch_at(candidate)
        if launch_at is None or launch_at > now:
            continue
        try:
            if candidate.schedule_type == ScheduleType.RECURRING:
                launched += campaign_occurrence_create(parent=candidate, now=now) is not None
            else:
                campaign_launch(campaign=candidate)
                launched += 1
        except (CampaignNotLaunchableError, CampaignNotReadyError) as exc:
            logger.warning(
                "scheduled campaign not launched",
                extra={"campaign": candidate.pk, "why": str(exc)},
            )
    return launched


def _occurrence_zone() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.CAMPAIGN_DEFAULT_TIMEZONE)


def campaign_occurrence_create(
    *, parent: Campaign | int, now: datetime | None = None
) -> Campaign | None:
    """The due occurrence of a recurring campaign, made and launched once: under the
    parent's row lock, the parent moves on to its next occurrence (or is done after
    `recurrence_until`) in the transaction that makes the child, and an existing child for
    the same time is never made again, so a beat run twice (or two beats) makes one.
    Returns the launched child, or None when nothing was due."""
    now = now or timezone.now()
    pk = parent.pk if isinstance(parent, Campaign) else parent
    with transaction.atomic():
        locked = campaign_qs_for_update().get(pk=pk)
        if (
            locked.status != CampaignStatus.SCHEDULED
            or locked.schedule_type != ScheduleType.RECURRING
            or locked.scheduled_at is None
            or locked.scheduled_at > now
        ):
            return None
        campaign_launch_checks(locked)
        zone = _occurrence_zone()
        due, following = occurrence_due(
            locked.scheduled_at, now, recurrence=locked.recurrence or "daily", zone=zone
        )
        child = None
        if not Campaign.objects.filter(parent=locked, scheduled_at=due).exists():
            child = _occurrence_copy(locked, due, zone)
            campaign_launch(campaign=child)
        if locked.recurrence_until is not None and following > locked.recurrence_until:
            locked.status, locked.finished_at = CampaignStatus.DONE, now
        else:
            locked.scheduled_at = following
        locked.started_at = locked.started_at or now
        locked.save(
            update_fields=["status", "scheduled_at", "started_at", "finished_at", "updated_at"]
        )
    logger.info(
        "campaign occurrence",
        extra={"campaign": pk, "occurrence": child.pk if child else None, "at": str(due)},
    )
    return child


# What an occurrence copies from its recurring parent (the rest is its own: status, times).
OCCURRENCE_FIELDS = (
    "channel",
    "template",
    "segment",
    "holdout_percent",
    "quiet_hours_start",
    "quiet_hours_end",
    "goal_event_type",
    "goal_window_hours",
    "audience_type",
    "created_by",
)


def _occurrence_copy(parent: Campaign, at: datetime, zone: zoneinfo.ZoneInfo) -> Campaign:
    child = Campaign.objects.create(
        **{name: getattr(parent, name) for name in OCCURRENCE_FIELDS},
        name=f"{parent.name} — {at.astimezone(zone).date().isoformat()}"[:200],
        status=CampaignStatus.SCHEDULED,
        schedule_type=ScheduleType.AT,
        scheduled_at=at,
        parent=parent,
    )
    CampaignVariant.objects.bulk_create(
        CampaignVariant(campaign=child, name=v.name, template_id=v.template_id, weight=v.weight)
        for v in parent.variants.order_by("pk")
    )
    return child


def _audience(segment: Segment) -> QuerySet[Customer]:
    sql, params = segment_member_ids_sql(segment=segment)
    members = RawSQL(sql, params)  # noqa: S611 - SQL compiled by the ORM, values as params
    return Customer.objects.filter(pk__in=members, erased_at=None)


def campaign_audience_page(*, campaign: Campaign, after_pk: int, limit: int) -> list[int]:
    """The next `limit` audience customer pks above `after_pk` (rule segments evaluated now)."""
    if campaign.segment is None:
        return []
    return list(
        _audience(campaign.segment)
        .filter(pk__gt=after_pk)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )


def campaign_audience_count(*, campaign: Campaign) -> int:
    """How many customers the fan-out pages through (rule segments evaluated now)."""
    if campaign.segment is None:
        return 0
    return _audience(campaign.segment).count()


def campaign_dispatch_page(*, campaign_id: int, after_pk: int) -> int:
    """Enqueue one batch and the next page; on an empty page the campaign is done. A paused
    (or finished) campaign stops here, and so does a page the fan-out cursor is already past
    (a redelivered page: its next page was enqueued before). The first page stores the
    audience size for the progress bar. Returns the number of customers enqueued."""
    campaign = Campaign.objects.select_related("segment").get(pk=campaign_id)
    if campaign.status != CampaignStatus.SENDING or _is_journey(campaign):
        return 0  # a journey has no audience to page through, and is not done when idle
    pks = campaign_audience_page(
        campaign=campaign, after_pk=after_pk, limit=settings.DISPATCH_BATCH_SIZE
    )
    if not pks:
        campaign_finish(campaign_id=campaign_id)
        return 0
    if not fanout_page_claim(campaign_id=campaign_id, after_pk=after_pk, last_pk=pks[-1]):
        logger.info("fan-out page already done", extra={"campaign": campaign_id, "after": after_pk})
        return 0
    if after_pk == 0:
        audience_size_store(
            campaign_id=campaign_id, size=campaign_audience_count(campaign=campaign)
        )
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

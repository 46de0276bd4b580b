"""Journeys: triggered campaigns. While a trigger campaign is active (status sending), a
customer who does its `trigger_event_type` enters it (a JourneyEntry, due `trigger_delay_minutes`
later); at the due time, a customer who did `trigger_exit_event_type` since has exited, anyone
else gets the message through the dispatch path (caps, consent, quiet hours all apply).

    journey_events_consume()       new trigger events -> entries (woken by events_ingest on
                                   commit, debounced; beat every minute as a safety net)
    journey_entries_decide_due()   due entries -> exited, or handed to dispatch (a countdown
                                   for the due time, beat every minute)
    journey_entry_settle()         an entry's outcome from its message (dispatch calls it)

Reading the stream: one consumer at a time (a PostgreSQL advisory lock) reads events above a
watermark (an Event pk kept in Redis) through the primary key, of the trigger types only. Two
ingest transactions may commit out of order (a lower pk becoming visible after a higher one),
so the watermark stays behind events received less than WATERMARK_SETTLE_SECONDS ago; those
are read again next time, which is harmless: an entry is unique per (campaign, customer,
trigger time) and the re-entry rule sees the entry already made. An ingest transaction that
takes longer than that to commit could be missed. If Redis loses the watermark it starts
again from the newest entry's trigger event, or from the start of the active journeys
(through the (type, occurred_at) index), and re-reads idempotently.

Only events that occurred after the journey was activated enter it, so a backfill of history
never sends; events the consumer reads while a journey is paused do not enter it (they are not
kept for its resumption).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Count, Exists, Max, OuterRef
from django.utils import timezone

from campaigns.models import (
    AudienceType,
    Campaign,
    CampaignStatus,
    JourneyEntry,
    JourneyStatus,
    Message,
    MessageStatus,
)
from campaigns.tasks import journey_entries_decide_task, messages_send_batch_task
from profiles.models import Event

logger = logging.getLogger(__name__)

JOURNEY_EVENTS_BATCH_SIZE = 5000
JOURNEY_DUE_BATCH_SIZE = 500
JOURNEYS_LOCK = 7_300_002  # pg advisory lock: one journey consumer at a time
WATERMARK_KEY = "campaigns:journeys:event_watermark"
TOP_SAMPLE_KEY = "campaigns:journeys:event_top_sample"
WATERMARK_SETTLE_SECONDS = 10
# Due entries are decided by a countdown task per DUE_SLOT_SECONDS slot (within the broker's
# visibility timeout) and, whatever the delay, by the beat every minute.
DUE_SLOT_SECONDS = 10
DUE_COUNTDOWN_MAX_SECONDS = 3000
# An entry handed to dispatch that still has no message after this long (the enqueue was
# lost in a crash) is handed over again; longer than any quiet-hours deferral.
HANDOVER_LOST_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class ConsumeResult:
    events: int
    entries: int
    locked_out: bool = False
    more: bool = False


@dataclass(frozen=True)
class DecideResult:
    exited: int = 0
    dispatched: int = 0
    skipped: int = 0
    more: bool = False


# --- entering -------------------------------------------------------------------------------


def _watermark(active: list[Campaign]) -> int:
    """The stored watermark, else a safe restart point (see the module docstring)."""
    stored = cache.get(WATERMARK_KEY)
    if stored is not None:
        return int(stored)
    newest = JourneyEntry.objects.filter(campaign__in=active).aggregate(m=Max("trigger_event_id"))
    return int(newest["m"] or 0)


def _settled_top(now: datetime) -> int | None:
    """The highest event pk seen at least WATERMARK_SETTLE_SECONDS ago: every event at or
    below it has committed (or its transaction ran longer than that). None until known."""
    sample = cache.get(TOP_SAMPLE_KEY)
    if sample is not None and sample[1] > now.timestamp() - WATERMARK_SETTLE_SECONDS:
        return None  # not settled yet: keep it for a later run
    top = Event.objects.aggregate(m=Max("pk"))["m"] or 0
    cache.set(TOP_SAMPLE_KEY, (top, now.timestamp()), timeout=None)
    return None if sample is None else int(sample[0])


def _reentry_blocks(journey: Campaign, previous: datetime | None, at: datetime) -> bool:
    """Null re-entry days: once per customer ever; N: not again within N days."""
    if previous is None:
        return False
    if journey.trigger_reentry_days is None:
        return True
    return abs(at - previous) < timedelta(days=journey.trigger_reentry_days)


def _entries_for(journey: Campaign, events: list[tuple]) -> list[JourneyEntry]:
    """New entries of one journey for its trigger events (pk, customer, type, occurred_at)."""
    started = journey.started_at
    mine = [e for e in events if e[2] == journey.trigger_event_type and started and e[3] >= started]
    if not mine:
        return []
    last: dict[int, datetime] = dict(
        JourneyEntry.objects.filter(campaign=journey, customer_id__in={e[1] for e in mine})
        .values("customer_id")
        .annotate(m=Max("triggered_at"))
        .values_list("customer_id", "m")
        .order_by()
    )
    delay = timedelta(minutes=journey.trigger_delay_minutes)
    entries = []
    for pk, customer_id, _type, occurred_at, *_ in sorted(mine, key=lambda e: (e[3], e[0])):
        if _reentry_blocks(journey, last.get(customer_id), occurred_at):
            continue
        last[customer_id] = max(occurred_at, last.get(customer_id, occurred_at))
        entries.append(
            JourneyEntry(
                campaign=journey,
                customer_id=customer_id,
                trigger_event_id=pk,
                triggered_at=occurred_at,
                due_at=occurred_at + delay,
            )
        )
    return entries


def journey_events_consume(
    *, limit: int = JOURNEY_EVENTS_BATCH_SIZE, now: datetime | None = None
) -> ConsumeResult:
    """Turn up to `limit` new trigger events into journey entries. Safe to run twice and
    from several workers (one gets the lock, the others return locked_out)."""
    now = now or timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [JOURNEYS_LOCK])
        if not cursor.fetchone()[0]:
            return ConsumeResult(events=0, entries=0, locked_out=True)
        active = list(
            Campaign.objects.filter(
                audience_type=AudienceType.TRIGGER,
                status=CampaignStatus.SENDING,
                started_at__isnull=False,
            ).exclude(trigger_event_type="")
        )
        watermark = _watermark(active)
        settled_top = _settled_top(now)
        if not active:
            # Nothing listens: whatever arrived so far will never enter a journey.
            if settled_top is not None:
                cache.set(WATERMARK_KEY, max(watermark, settled_top), timeout=None)
            return ConsumeResult(events=0, entries=0)
        events = list(
            Event.objects.filter(
                pk__gt=watermark,
                type__in={j.trigger_event_type for j in active},
                occurred_at__gte=min(j.started_at or now for j in active),
            )
            .order_by("pk")
            .values_list("pk", "customer_id", "type", "occurred_at", "received_at")[:limit]
        )
        entries = [entry for journey in active for entry in _entries_for(journey, events)]
        JourneyEntry.objects.bulk_create(entries, ignore_conflicts=True)
        full = len(events) == limit
        settle_from = now - timedelta(seconds=WATERMARK_SETTLE_SECONDS)
        unsettled = [e[0] for e in events if e[4] > settle_from]
        if unsettled:
            advanced = unsettled[0] - 1
        elif full:
            advanced = events[-1][0]
        else:
            advanced = max([watermark, settled_top or 0, *(e[0] for e in events)])
        cache.set(WATERMARK_KEY, max(watermark, advanced), timeout=None)
        if entries:
            due_times = sorted({entry.due_at for entry in entries})
            transaction.on_commit(lambda: journey_entries_decide_schedule(due_times=due_times))
    if entries:
        logger.info("journey entries", extra={"events": len(events), "entries": len(entries)})
    return ConsumeResult(
        events=len(events), entries=len(entries), more=full and advanced > watermark
    )


def journey_entries_decide_schedule(*, due_times: list[datetime]) -> None:
    """One countdown task per DUE_SLOT_SECONDS slot with entries falling due in it (the
    first caller of a slot schedules it); beyond DUE_COUNTDOWN_MAX_SECONDS the beat does."""
    now = timezone.now().timestamp()
    for slot in sorted({int(t.timestamp()) // DUE_SLOT_SECONDS + 1 for t in due_times}):
        countdown = max(0.0, slot * DUE_SLOT_SECONDS - now)
        if countdown > DUE_COUNTDOWN_MAX_SECONDS:
            break
        if cache.add(f"campaigns:journeys:due:{slot}", 1, timeout=int(countdown) + 120):
            journey_entries_decide_task.apply_async(countdown=countdown)


# --- deciding -------------------------------------------------------------------------------


def journey_entries_decide_due(
    *, limit: int = JOURNEY_DUE_BATCH_SIZE, now: datetime | None = None
) -> DecideResult:
    """Decide up to `limit` due entries of active journeys: exited when the customer did the
    exit event after the trigger, else handed to dispatch (one send task per entry, enqueued
    after commit; the entry keeps `waiting` with `decided_at` set until its message settles
    it). Entries are claimed under SKIP LOCKED and marked in the same transaction, so a
    redelivered or concurrent run decides each entry once. Entries of paused journeys wait;
    those of ended or cancelled ones are skipped."""
    now = now or timezone.now()
    waiting = JourneyEntry.objects.filter(status=JourneyStatus.WAITING, due_at__lte=now)
    skipped = waiting.filter(
        decided_at=None, campaign__status__in=[CampaignStatus.DONE, CampaignStatus.CANCELLED]
    ).update(status=JourneyStatus.SKIPPED, decided_at=now)
    exit_event = _exit_event()
    with transaction.atomic():
        claimed = list(
            waiting.filter(decided_at=None, campaign__status=CampaignStatus.SENDING)
            .annotate(exited=Exists(exit_event))
            .select_for_update(of=("self",), skip_locked=True)
            .order_by("due_at", "pk")
            .values_list("pk", "campaign_id", "customer_id", "exited")[:limit]
        )
        exited = [pk for pk, _, _, did_exit in claimed if did_exit]
        to_send = [(pk, c, cu) for pk, c, cu, did_exit in claimed if not did_exit]
        JourneyEntry.objects.filter(pk__in=exited).update(
            status=JourneyStatus.EXITED, decided_at=now
        )
        lost = list(
            waiting.filter(
                decided_at__lt=now - HANDOVER_LOST_AFTER,
                campaign__status=CampaignStatus.SENDING,
                messages__isnull=True,
            )
            .select_for_update(of=("self",), skip_locked=True)
            .order_by("pk")
            .values_list("pk", "campaign_id", "customer_id")[:limit]
        )
        JourneyEntry.objects.filter(pk__in=[e[0] for e in to_send + lost]).update(decided_at=now)
        if to_send or lost:
            transaction.on_commit(lambda: _hand_over(to_send + lost))
    if claimed or skipped or lost:
        logger.info(
            "journey entries decided",
            extra={"exited": len(exited), "dispatched": len(to_send), "lost": len(lost)},
        )
    return DecideResult(
        exited=len(exited),
        dispatched=len(to_send) + len(lost),
        skipped=skipped,
        more=len(claimed) == limit,
    )


def _exit_event() -> Any:
    """The entry's customer did the journey's exit event after the trigger (for Exists, on a
    JourneyEntry queryset)."""
    return Event.objects.filter(
        customer_id=OuterRef("customer_id"),
        type=OuterRef("campaign__trigger_exit_event_type"),
        occurred_at__gt=OuterRef("triggered_at"),
    )


def journey_entry_exit_if_done(*, entry_id: int) -> bool:
    """The exit check again at send time: an entry whose message was deferred (quiet hours,
    a local send time) is sent later than it was decided, and a customer who did the exit
    event meanwhile must not get it. Marks the entry exited; True when it has."""
    return bool(
        JourneyEntry.objects.filter(pk=entry_id, status=JourneyStatus.WAITING)
        .filter(Exists(_exit_event()))
        .update(status=JourneyStatus.EXITED, decided_at=timezone.now())
    )


def _hand_over(entries: list[tuple[int, int, int]]) -> None:
    for entry_id, campaign_id, customer_id in entries:
        messages_send_batch_task.delay(campaign_id, [customer_id], entry_id)


def journey_entry_settle(*, entry_id: int) -> str:
    """The entry's outcome from its message, once dispatch has decided it (not deferred):
    sent (or on its way: queued for a retry, being sent), skipped (held out, capped, no
    consent...) or failed -> skipped; no message at all means there was nobody to send to
    (the customer was erased) -> skipped. Returns the status."""
    status = (
        Message.objects.filter(journey_entry_id=entry_id).values_list("status", flat=True).first()
    )
    outcome = (
        JourneyStatus.SENT
        if status in (MessageStatus.SENT, MessageStatus.QUEUED, MessageStatus.SENDING)
        else JourneyStatus.SKIPPED
    )
    JourneyEntry.objects.filter(pk=entry_id, status=JourneyStatus.WAITING).update(status=outcome)
    return outcome


# --- the journey's life (called by campaigns/lifecycle.py) ----------------------------------


def journey_entries_requeue(*, campaign_id: int) -> int:
    """On resume: entries handed to dispatch while the journey was paused got no message
    (a paused campaign sends nothing); decide them again."""
    return JourneyEntry.objects.filter(
        campaign_id=campaign_id,
        status=JourneyStatus.WAITING,
        decided_at__isnull=False,
        messages__isnull=True,
    ).update(decided_at=None)


def journey_entries_close(*, campaign_id: int, now: Any = None) -> int:
    """On ending a journey: entries not yet handed to dispatch will never be; skipped."""
    return JourneyEntry.objects.filter(
        campaign_id=campaign_id, status=JourneyStatus.WAITING, decided_at=None
    ).update(status=JourneyStatus.SKIPPED, decided_at=now or timezone.now())


def journey_counts(*, campaign: Campaign) -> dict[str, int]:
    """{status: entries} of a journey, for its page."""
    return dict(
        JourneyEntry.objects.filter(campaign=campaign)
        .values_list("status")
        .annotate(n=Count("pk"))
        .order_by()
    )

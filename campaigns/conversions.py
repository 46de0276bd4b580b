"""Conversion attribution over the event stream: goal events (each campaign's
`goal_event_type`, `purchase` when blank) convert the message that touched the customer last
within the campaign's `goal_window_hours` (rules in campaigns/conversion_rules.py), setting
its converted_at and conversion_value (the event's value) once. Held-out and global-control
rows convert too, so the report can show the lift over them.

`conversions_attribute_new` is run every minute by beat (campaigns.conversions_attribute). It
reads the goal events after a watermark on Event pk (kept in the cache) in batches of
CONVERSIONS_BATCH_SIZE and is idempotent: a message converts only while converted_at is
null, so a batch read twice (a redelivered task, a lost watermark) changes nothing.

Event pks are taken when a row is inserted, not when its transaction commits, so an event
can become visible after a larger pk was read. The watermark therefore only passes events
received more than SETTLE_SECONDS ago; younger ones are read again by the next run.

Only events that occurred within the longest goal window (plus LATE_EVENT_DAYS for events that
arrive late) can convert a message still in its window, so the read is bounded by
`occurred_at` as well: the (type, occurred_at) index keeps it small however many events pass
without a goal among them, and a first run (or a flushed cache, watermark 0) reads only those.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import connection
from django.db.models import Max, Q
from django.utils import timezone

from campaigns.conversion_rules import Goal, Touch, conversions_attribute
from campaigns.models import Campaign, Message, MessageStatus, SkipReason
from profiles.models import Event, EventType

logger = logging.getLogger(__name__)

CONVERSIONS_BATCH_SIZE = 5000
SETTLE_SECONDS = 120
LATE_EVENT_DAYS = 7
WATERMARK_KEY = "campaigns:conversions:event_pk"
DEFAULT_GOAL = EventType.PURCHASE
CONTROL_REASONS = (SkipReason.HOLDOUT, SkipReason.GLOBAL_CONTROL)


@dataclass(frozen=True)
class ConversionResult:
    events: int = 0
    converted: int = 0
    watermark: int = 0
    more: bool = False  # a full batch was read: run again


def _goals_and_window() -> tuple[set[str], timedelta]:
    rows = Campaign.objects.values_list("goal_event_type").distinct()
    goals = {goal or DEFAULT_GOAL for (goal,) in rows}
    hours = Campaign.objects.aggregate(h=Max("goal_window_hours"))["h"] or 0
    return goals, timedelta(hours=hours)


def _touches(goals: list[Goal], window: timedelta) -> dict[int, list[Touch]]:
    customers = {g.customer_id for g in goals}
    since = min(g.occurred_at for g in goals) - window
    until = max(g.occurred_at for g in goals)
    rows = Message.objects.filter(customer_id__in=customers).filter(
        Q(status=MessageStatus.SENT, sent_at__gte=since, sent_at__lte=until, bounced_at=None)
        | Q(
            status=MessageStatus.SKIPPED,
            skip_reason__in=CONTROL_REASONS,
            created_at__gte=since,
            created_at__lte=until,
        )
    )
    touches: dict[int, list[Touch]] = defaultdict(list)
    for row in rows.values_list(
        "pk",
        "customer_id",
        "campaign__goal_event_type",
        "campaign__goal_window_hours",
        "status",
        "sent_at",
        "created_at",
        "clicked_at",
        "converted_at",
    ):
        pk, customer_id, goal, hours, status, sent_at, created_at, clicked_at, converted_at = row
        control = status == MessageStatus.SKIPPED
        touches[customer_id].append(
            Touch(
                message_id=pk,
                goal_type=goal or DEFAULT_GOAL,
                reference_at=created_at if control or sent_at is None else sent_at,
                window=timedelta(hours=hours),
                clicked_at=clicked_at,
                control=control,
                converted=converted_at is not None,
            )
        )
    return touches


_CONVERT = """
UPDATE campaigns_message AS m SET converted_at = v.converted_at, conversion_value = v.value
FROM unnest(%s::bigint[], %s::timestamptz[], %s::numeric[]) AS v(id, converted_at, value)
WHERE m.id = v.id AND m.converted_at IS NULL
"""


def messages_convert(*, conversions: dict[int, Goal]) -> int:
    """Set converted_at/conversion_value of the messages not yet converted (one UPDATE)."""
    if not conversions:
        return 0
    ids = sorted(conversions)
    with connection.cursor() as cursor:
        cursor.execute(
            _CONVERT,
            [
                ids,
                [conversions[i].occurred_at for i in ids],
                [conversions[i].value for i in ids],
            ],
        )
        return cursor.rowcount


def conversions_attribute_new(
    *, batch_size: int = CONVERSIONS_BATCH_SIZE, now: datetime | None = None
) -> ConversionResult:
    """Attribute the goal events after the watermark (one batch) and move the watermark past
    the settled ones."""
    now = now or timezone.now()
    goals, window = _goals_and_window()
    watermark = cache.get(WATERMARK_KEY) or 0
    since = now - window - timedelta(days=LATE_EVENT_DAYS)
    rows = list(
        Event.objects.filter(pk__gt=watermark, type__in=goals, occurred_at__gte=since)
        .order_by("pk")
        .values_list("pk", "customer_id", "type", "occurred_at", "value", "received_at")[
            :batch_size
        ]
    )
    if not rows:
        cache.set(WATERMARK_KEY, watermark, timeout=None)
        return ConversionResult(watermark=watermark)
    batch = [Goal(pk, customer, kind, at, value) for pk, customer, kind, at, value, _ in rows]
    converted = messages_convert(conversions=conversions_attribute(batch, _touches(batch, window)))
    settled = now - timedelta(seconds=SETTLE_SECONDS)
    for pk, *_rest, received_at in rows:
        if received_at >= settled:
            break
        watermark = pk
    cache.set(WATERMARK_KEY, watermark, timeout=None)
    result = ConversionResult(
        events=len(rows),
        converted=converted,
        watermark=watermark,
        more=len(rows) == batch_size and watermark == rows[-1][0],
    )
    logger.info("conversions attributed", extra=result.__dict__)
    return result

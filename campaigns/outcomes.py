"""What happened to a message after the send: accepted, delivered, bounced, opened, clicked,
unsubscribed. Written by the tracking endpoints (campaigns/views_tracking.py), the provider
webhooks (campaigns/webhook_services.py) and read by the reports.

    message_mark_accepted(key=)           the provider has the message: `sending` -> `sent`
    messages_outcomes_record(outcomes=)   many messages' outcomes in one statement
    message_open_record(key=)             the open pixel
    message_click_record(key=, url=)      a click redirect
    message_unsubscribe(key=)             the per-message unsubscribe link (and RFC 8058 POST)

Each time is the first one: a later event never moves it (COALESCE in SQL, so concurrent
webhooks and pixel hits cannot race a time backwards). A click implies an open. Anything the
provider reports about a message proves the provider accepted it, so every outcome also
resolves a message whose send was uncertain (see `message_mark_accepted`).

The profile events (`email_open`, `email_click`, `sms_click`, `push_open`, `unsubscribe`) go
through profiles' `events_ingest` with deterministic event ids: the first open of a message is
one event however often the pixel loads or SendGrid reports it, and a click is one event per
message and link.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from campaigns.models import Message, MessageStatus
from profiles.consent import CHANNEL_PURPOSE, consent_set
from profiles.ingest import EventRow
from profiles.models import ConsentSource, Customer, EventType
from profiles.services import events_ingest

logger = logging.getLogger(__name__)

EVENT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "campaigns.message-events")
CLICK_EVENT = {
    "email": EventType.EMAIL_CLICK,
    "sms": EventType.SMS_CLICK,
    "push": EventType.PUSH_OPEN,
}


@dataclass
class Outcome:
    """What is known about one message from one request or webhook delivery (each time the
    earliest seen). `accepted_at` set: the provider has it; `provider_message_id` is stored
    when the row has none yet."""

    accepted_at: datetime | None = None
    delivered_at: datetime | None = None
    bounced_at: datetime | None = None
    opened_at: datetime | None = None
    clicked_at: datetime | None = None
    unsubscribed_at: datetime | None = None
    provider_message_id: str = ""

    def note(self, field: str, at: datetime) -> None:
        """Record `field` at `at` unless an earlier time is known; a click implies an open,
        and any outcome implies acceptance."""
        for name in (field, "accepted_at", *(("opened_at",) if field == "clicked_at" else ())):
            current = getattr(self, name)
            if current is None or at < current:
                setattr(self, name, at)


@dataclass(frozen=True)
class RecordedOutcome:
    """A message the update matched, with what the events need."""

    key: str
    message_id: int
    campaign_id: int
    channel: str
    address: str
    customer_external_id: str
    customer_live: bool
    first_open: bool
    first_click: bool


# Old values come from a self-join (`old`): in an UPDATE, `m` is the new row in RETURNING.
# A status becomes `sent` from anything but `skipped` (never sent) and `sent`: `sending` after
# a worker crash, `failed` after a lost or timed-out send the provider did accept, `queued`
# waiting for a retry of a send that in fact went through (the retry then finds it sent).
_OUTCOMES_UPDATE = """
UPDATE campaigns_message AS m SET
    status = CASE WHEN v.accepted_at IS NOT NULL AND m.status NOT IN ('sent', 'skipped')
                  THEN 'sent' ELSE m.status END,
    error = CASE WHEN v.accepted_at IS NOT NULL AND m.status NOT IN ('sent', 'skipped')
                 THEN '' ELSE m.error END,
    sent_at = CASE WHEN v.accepted_at IS NOT NULL AND m.status <> 'skipped'
                   THEN COALESCE(m.sent_at, v.accepted_at) ELSE m.sent_at END,
    provider_message_id = CASE WHEN m.provider_message_id = '' THEN v.provider_id
                               ELSE m.provider_message_id END,
    delivered_at = COALESCE(m.delivered_at, v.delivered_at),
    bounced_at = COALESCE(m.bounced_at, v.bounced_at),
    opened_at = COALESCE(m.opened_at, v.opened_at),
    clicked_at = COALESCE(m.clicked_at, v.clicked_at),
    unsubscribed_at = COALESCE(m.unsubscribed_at, v.unsubscribed_at)
FROM unnest(%s::text[], %s::timestamptz[], %s::timestamptz[], %s::timestamptz[],
            %s::timestamptz[], %s::timestamptz[], %s::timestamptz[], %s::text[])
        AS v(key, accepted_at, delivered_at, bounced_at, opened_at, clicked_at,
             unsubscribed_at, provider_id),
     campaigns_message AS old, profiles_customer AS c
WHERE m.idempotency_key = v.key AND old.id = m.id AND c.id = m.customer_id
    AND m.status <> 'skipped' {changed}
RETURNING m.idempotency_key, m.id, m.campaign_id, m.channel, m.address, c.external_id,
    c.erased_at IS NULL, old.opened_at IS NULL AND m.opened_at IS NOT NULL,
    old.clicked_at IS NULL AND m.clicked_at IS NOT NULL
"""


# Only rows the outcome changes: a repeated pixel load then writes nothing (no new row
# version, no WAL to flush).
_CHANGES = (
    """AND (
    v.accepted_at IS NOT NULL AND (m.status NOT IN ('sent', 'skipped') OR m.sent_at IS NULL)
    OR m.provider_message_id = '' AND v.provider_id <> ''
"""
    + "".join(
        f"    OR m.{name} IS NULL AND v.{name} IS NOT NULL\n"
        for name in ("delivered_at", "bounced_at", "opened_at", "clicked_at", "unsubscribed_at")
    )
    + ")"
)


def messages_outcomes_record(
    *, outcomes: Mapping[str, Outcome], changed_only: bool = False
) -> list[RecordedOutcome]:
    """Apply the outcomes of many messages (by idempotency key) in one UPDATE: a webhook
    delivery of 1,000 events is one statement, not 1,000. Unknown keys and skipped rows are
    left out of the result, and with `changed_only` the rows the outcomes do not change."""
    if not outcomes:
        return []
    keys = sorted(outcomes)  # one lock order for concurrent deliveries
    columns = [[getattr(outcomes[k], f.name) for k in keys] for f in fields(Outcome)]
    with connection.cursor() as cursor:
        sql = _OUTCOMES_UPDATE.format(changed=_CHANGES if changed_only else "")
        cursor.execute(sql, [keys, *columns])
        rows = cursor.fetchall()
    return [RecordedOutcome(*row) for row in rows]


def message_mark_accepted(
    *, key: str, at: datetime | None = None, provider_message_id: str = ""
) -> bool:
    """The provider has this message (SendGrid `processed`, a Twilio status, an open...): a
    row still `sending` after a worker died between the claim and the provider's answer, a
    lost `failed` one, or a `queued` one awaiting a retry of a send that went through,
    becomes `sent` (sent_at the time given, else now), and a retry finds it sent and sends
    nothing. Already `sent` or `skipped` rows are unchanged. Returns whether the key is a
    message that was sent."""
    outcome = Outcome(accepted_at=at or timezone.now(), provider_message_id=provider_message_id)
    return bool(messages_outcomes_record(outcomes={key: outcome}))


def _event_id(key: str, kind: str, detail: str = "") -> uuid.UUID:
    return uuid.uuid5(EVENT_NAMESPACE, f"{key}|{kind}|{detail}")


@dataclass(frozen=True)
class MessageEvent:
    """A profile event caused by a message (`detail` tells repeated ones apart, e.g. the
    clicked URL)."""

    recorded: RecordedOutcome
    type: str
    at: datetime
    detail: str = ""
    properties: Mapping | None = None


def message_events_record(
    *, events: Sequence[MessageEvent], consent_source: str = ConsentSource.API
) -> int:
    """Store the events in the customers' event streams (campaign_id and channel set), once
    each: the event id is derived from the message key, the kind and `detail`. Erased
    customers get nothing. Returns how many were new."""
    rows = [
        EventRow(
            event_id=_event_id(e.recorded.key, e.type, e.detail),
            customer_id=e.recorded.customer_external_id,
            type=e.type,
            item_id="",
            value=None,
            channel=e.recorded.channel if e.recorded.channel != "in_app" else "app",
            campaign_id=e.recorded.campaign_id,
            occurred_at=e.at,
            properties={"message_id": e.recorded.message_id, **(e.properties or {})},
        )
        for e in events
        if e.recorded.customer_live
    ]
    if not rows:
        return 0
    return events_ingest(rows=rows, consent_source=consent_source).accepted


def _engagement_events(recorded: RecordedOutcome, *, at: datetime, url: str = "") -> list:
    """The events of a first open and of a click on `url` (a push notification's click is
    its open)."""
    events = []
    if recorded.first_open and recorded.channel == "email":
        events.append(MessageEvent(recorded, EventType.EMAIL_OPEN, at))
    if url and recorded.channel in CLICK_EVENT:
        events.append(MessageEvent(recorded, CLICK_EVENT[recorded.channel], at, url, {"url": url}))
    return events


def _commit_without_waiting() -> None:
    """Inside the caller's transaction: commit without waiting for the WAL flush. A pixel
    or click is cheap to lose (a database crash forgets the last moments of opens, nothing
    else), and waiting for the disk on every image a mail client loads is most of the
    request."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit TO OFF")


def message_open_record(*, key: str, at: datetime | None = None) -> bool:
    """The open pixel of `key` loaded: opened_at (first time) and one `email_open` event.
    A repeated load is one UPDATE that changes nothing. Returns whether it was the first."""
    at = at or timezone.now()
    with transaction.atomic():
        _commit_without_waiting()
        outcome = Outcome(accepted_at=at, opened_at=at)
        recorded = messages_outcomes_record(outcomes={key: outcome}, changed_only=True)
        if not recorded or not recorded[0].first_open:
            return False
        message_events_record(events=_engagement_events(recorded[0], at=at))
    return True


def message_click_record(*, key: str, url: str, at: datetime | None = None) -> bool:
    """A click on `url` in message `key`: clicked_at and opened_at (first times), the
    channel's click event (one per link), and the open event if this is the first sign of an
    open (images blocked). Returns whether the key is a sent message."""
    at = at or timezone.now()
    outcome = Outcome()
    outcome.note("clicked_at", at)
    with transaction.atomic():
        _commit_without_waiting()
        recorded = messages_outcomes_record(outcomes={key: outcome})
        if not recorded:
            return False
        message_events_record(events=_engagement_events(recorded[0], at=at, url=url))
    return True


@dataclass(frozen=True)
class MessageRecipient:
    key: str
    customer_id: int
    channel: str
    purpose: str


def message_recipient_get(*, key: str) -> MessageRecipient | None:
    """Who a sent message went to (None for unknown keys, skipped rows, erased customers)."""
    row = (
        Message.objects.filter(idempotency_key=key, customer__erased_at=None)
        .exclude(status=MessageStatus.SKIPPED)
        .values_list("customer_id", "channel")
        .first()
    )
    if row is None:
        return None
    return MessageRecipient(
        key=key, customer_id=row[0], channel=row[1], purpose=CHANNEL_PURPOSE[row[1]]
    )


def message_unsubscribe(*, key: str, at: datetime | None = None) -> MessageRecipient | None:
    """The recipient of `key` unsubscribes through that message: consent for the channel's
    purpose is withdrawn (source `unsubscribe_link`, the message in the audit note), the
    message gets unsubscribed_at, and one `unsubscribe` event is recorded. Safe to repeat.
    None when the key names no message we sent to a live customer."""
    recipient = message_recipient_get(key=key)
    if recipient is None:
        return None
    at = at or timezone.now()
    with transaction.atomic():
        consent_set(
            customer=Customer(pk=recipient.customer_id),
            purpose=recipient.purpose,
            granted=False,
            source=ConsentSource.UNSUBSCRIBE_LINK,
            actor="recipient",
            note=f"message {key}",
            at=at,
        )
        recorded = messages_outcomes_record(
            outcomes={key: Outcome(accepted_at=at, unsubscribed_at=at)}
        )
        message_events_record(
            events=[
                MessageEvent(
                    r, EventType.UNSUBSCRIBE, at, properties={"purpose": recipient.purpose}
                )
                for r in recorded
            ],
            consent_source=ConsentSource.UNSUBSCRIBE_LINK,
        )
    logger.info("unsubscribed through a message", extra={"message_key": key})
    return recipient

"""Provider webhooks that report on our messages: SendGrid's Event Webhook events (linked by
the `message_id` custom arg, which `sendgrid_mail_body` always sets) and Twilio's status
callbacks (linked by `message_id` in the StatusCallback URL's query, set by the SMS provider).
Consent changes of the same webhooks are in campaigns/webhook_services.py; the signatures are
checked there before anything here runs.

A delivery of up to ~1,000 SendGrid events is folded into one outcome per message (each time
the earliest) and written in one UPDATE (campaigns/outcomes.py); opens and clicks also become
profile events with deterministic ids, so a redelivered webhook adds nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from django.utils import timezone

from campaigns.outcomes import (
    MessageEvent,
    Outcome,
    message_events_record,
    messages_outcomes_record,
)
from campaigns.providers.base import MESSAGE_ID_ARG
from campaigns.providers.sms import TWILIO_UNREACHABLE_CODES
from campaigns.tracking import click_target
from profiles.models import Channel, EventType
from profiles.services import endpoints_mark_bounced

logger = logging.getLogger(__name__)

# SendGrid event -> the outcome it sets (None: only that the provider accepted the message).
SENDGRID_OUTCOMES: dict[str, str | None] = {
    "processed": None,
    "deferred": None,
    "group_resubscribe": None,
    "delivered": "delivered_at",
    "bounce": "bounced_at",
    "dropped": "bounced_at",
    "open": "opened_at",
    "click": "clicked_at",
    "unsubscribe": "unsubscribed_at",
    "group_unsubscribe": "unsubscribed_at",
    "spamreport": "unsubscribed_at",
}
TWILIO_OUTCOMES: dict[str, str | None] = {
    "accepted": None,
    "scheduled": None,
    "queued": None,
    "sending": None,
    "sent": None,
    "delivered": "delivered_at",
    "undelivered": "bounced_at",
    "failed": "bounced_at",
}
# Delivery-time error codes that say the number cannot get messages, besides the API's own
# (30005 unknown destination handset, 30006 landline or unreachable carrier).
TWILIO_STATUS_UNREACHABLE_CODES = TWILIO_UNREACHABLE_CODES | {30005, 30006}


def sendgrid_event_time(value) -> datetime | None:
    """SendGrid's `timestamp` is Unix seconds; a future time is clamped to now."""
    try:
        at = datetime.fromtimestamp(int(value), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
    return min(at, timezone.now())


def _sendgrid_provider_id(event: Mapping) -> str:
    """`sg_message_id` is the X-Message-Id of the send plus a per-recipient suffix."""
    return str(event.get("sg_message_id") or "").split(".")[0][:200]


def sendgrid_message_events_apply(*, events: list) -> set[int]:
    """Link the events carrying our message id to their messages and record what they say:
    processed/deferred (accepted: a message left `sending` by a crash is `sent`), delivered,
    bounce/dropped (bounced_at; the status stays `sent`: it was handed over), open (not
    SendGrid's machine opens, e.g. Apple's privacy prefetch), click (also opened) and
    unsubscribe/spamreport. Returns the indices of the events that matched a message."""
    outcomes: dict[str, Outcome] = {}
    clicks: list[tuple[str, datetime, str]] = []
    positions: dict[str, list[int]] = {}
    now = timezone.now()
    for index, event in enumerate(events):
        if not isinstance(event, dict) or event.get("event") not in SENDGRID_OUTCOMES:
            continue
        key = str(event.get(MESSAGE_ID_ARG) or "")
        if not key:
            continue
        at = sendgrid_event_time(event.get("timestamp")) or now
        outcome = outcomes.setdefault(key, Outcome())
        field = SENDGRID_OUTCOMES[event["event"]]
        if field == "opened_at" and event.get("sg_machine_open") is True:
            field = None
        outcome.note(field or "accepted_at", at)
        outcome.provider_message_id = outcome.provider_message_id or _sendgrid_provider_id(event)
        positions.setdefault(key, []).append(index)
        if field == "clicked_at" and event.get("url"):
            clicks.append((key, at, click_target(str(event["url"]))[:2000]))
    recorded = {r.key: r for r in messages_outcomes_record(outcomes=outcomes)}
    profile_events = [
        MessageEvent(r, EventType.EMAIL_OPEN, opened_at)
        for r in recorded.values()
        if r.first_open
        and r.channel == Channel.EMAIL
        and (opened_at := outcomes[r.key].opened_at) is not None
    ]
    profile_events += [
        MessageEvent(recorded[key], EventType.EMAIL_CLICK, at, url, {"url": url})
        for key, at, url in clicks
        if key in recorded and recorded[key].channel == Channel.EMAIL
    ]
    message_events_record(events=profile_events)
    logger.info(
        "sendgrid message events applied",
        extra={"messages": len(recorded), "keys": len(outcomes), "events": len(profile_events)},
    )
    return {i for key in recorded for i in positions[key]}


@dataclass(frozen=True)
class StatusResult:
    """What one Twilio status callback changed."""

    message: bool = False
    endpoints: int = 0
    ignored: bool = False


def twilio_status_apply(
    *, message_key: str, status: str, error_code: str = "", message_sid: str = ""
) -> StatusResult:
    """One status of one SMS: queued/sent (accepted: resolves a send left uncertain),
    delivered (delivered_at), undelivered/failed (bounced_at; the status stays `sent`, and an
    error code saying the number is unusable, e.g. 21211 or 21614, flags the endpoint
    bounced so it is not sent to again). Unknown statuses and keys are ignored."""
    status = status.strip().lower()
    if not message_key or status not in TWILIO_OUTCOMES:
        return StatusResult(ignored=True)
    outcome = Outcome(provider_message_id=message_sid[:200])
    outcome.note(TWILIO_OUTCOMES[status] or "accepted_at", timezone.now())
    recorded = messages_outcomes_record(outcomes={message_key: outcome})
    if not recorded:
        return StatusResult(ignored=True)
    endpoints = 0
    try:
        code = int(error_code or 0)
    except ValueError:
        code = 0
    if TWILIO_OUTCOMES[status] == "bounced_at" and code in TWILIO_STATUS_UNREACHABLE_CODES:
        endpoints = endpoints_mark_bounced(channel=Channel.SMS, address=recorded[0].address)
    logger.info(
        "twilio status applied",
        extra={"message_key": message_key, "status": status, "code": code, "endpoints": endpoints},
    )
    return StatusResult(message=True, endpoints=endpoints)

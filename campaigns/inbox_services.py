"""The in-app inbox: what dispatch stores for an in-app message, and what the storefront
reports back (read, clicked, dismissed).

In-app messages are not delivered anywhere (campaigns/providers/local.py): the `sent` row is
the inbox entry, and `payload` holds the content as rendered at send time. Rendering again
when the storefront asks would show today's recommendations and profile, not what was sent.

Each mark is set once (a conditional UPDATE on the still-empty column), and only the call that
sets it records the customer's event, through campaigns/outcomes.py like every event a message
causes (deterministic event ids, channel `app`), so a retried request adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from django.db import transaction
from django.utils import timezone

from campaigns.inbox_selectors import inbox_messages
from campaigns.models import Message
from campaigns.outcomes import MessageEvent, RecordedOutcome, message_events_record
from campaigns.templating import RenderedMessage
from profiles.models import Customer, EventType


def in_app_payload(rendered: RenderedMessage) -> dict[str, str]:
    """The stored content of an in-app message, in the shape the inbox API returns it."""
    return {
        "title": rendered.title,
        "body": rendered.text,
        "url": rendered.url,
        "icon": rendered.icon,
    }


class InboxAction(StrEnum):
    READ = "read"
    CLICK = "click"
    DISMISS = "dismiss"


# The column each action sets. A click is the `click` event of the app channel (attributed to
# the campaign like any click); reading and dismissing have no event type of their own, so
# they are `custom` events named `in_app_read` / `in_app_dismiss` in their properties.
_COLUMN = {
    InboxAction.READ: "opened_at",
    InboxAction.CLICK: "clicked_at",
    InboxAction.DISMISS: "dismissed_at",
}


@dataclass(frozen=True)
class InboxMarkResult:
    message: Message
    changed: bool  # False: the message had been marked so already (a repeat)


def inbox_message_mark(
    *, customer: Customer, message_id: int, action: InboxAction, now: datetime | None = None
) -> InboxMarkResult:
    """Mark one of the customer's inbox messages read, clicked or dismissed, once.

    Raises Message.DoesNotExist when the message is not in the customer's inbox (another
    customer's, not in-app, not sent, or expired), which the API answers with 404. A click
    also marks the message read: it was seen to be clicked.
    """
    now = now or timezone.now()
    column = _COLUMN[action]
    message = inbox_messages(customer=customer, now=now, include_dismissed=True).get(pk=message_id)
    with transaction.atomic():
        changed = bool(
            Message.objects.filter(pk=message.pk, **{f"{column}__isnull": True}).update(
                **{column: now}
            )
        )
        if action == InboxAction.CLICK:
            Message.objects.filter(pk=message.pk, opened_at__isnull=True).update(opened_at=now)
        if changed:
            message_events_record(
                events=[_event(customer=customer, message=message, action=action, at=now)]
            )
    message.refresh_from_db(fields=["opened_at", "clicked_at", "dismissed_at"])
    return InboxMarkResult(message=message, changed=changed)


def _event(
    *, customer: Customer, message: Message, action: InboxAction, at: datetime
) -> MessageEvent:
    recorded = RecordedOutcome(
        key=message.idempotency_key,
        message_id=message.pk,
        campaign_id=message.campaign_id,
        channel=message.channel,
        address=message.address,
        customer_external_id=customer.external_id,
        customer_live=customer.erased_at is None,
        first_open=action == InboxAction.READ,
        first_click=action == InboxAction.CLICK,
    )
    if action == InboxAction.CLICK:
        url = message.payload.get("url", "")
        return MessageEvent(recorded, EventType.CLICK, at, url, {"url": url} if url else None)
    name = f"in_app_{action}"
    return MessageEvent(recorded, EventType.CUSTOM, at, name, {"name": name})

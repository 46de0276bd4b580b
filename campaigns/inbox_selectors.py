"""Reading a customer's in-app inbox (see campaigns/inbox_services.py for what is stored)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet

from campaigns.models import Message, MessageStatus
from profiles.models import Channel, Customer


def inbox_messages(
    *,
    customer: Customer,
    now: datetime,
    unread: bool = False,
    include_dismissed: bool = False,
) -> QuerySet[Message]:
    """The customer's sent in-app messages younger than IN_APP_MESSAGE_TTL_DAYS, newest first
    (served by the (customer, sent_at) index). Dismissed ones are left out unless asked for
    (marking a dismissed message clicked is still allowed). A message sent before its content
    was stored has an empty payload and is left out: it has nothing to show."""
    since = now - timedelta(days=settings.IN_APP_MESSAGE_TTL_DAYS)
    messages = (
        Message.objects.filter(
            customer=customer,
            channel=Channel.IN_APP,
            status=MessageStatus.SENT,
            sent_at__gte=since,
        )
        .exclude(payload={})
        .order_by("-sent_at", "-pk")
    )
    if not include_dismissed:
        messages = messages.filter(dismissed_at__isnull=True)
    if unread:
        messages = messages.filter(opened_at__isnull=True)
    return messages

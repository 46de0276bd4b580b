"""What campaigns hold about a person, for profiles' export and erasure (registered in
CampaignsConfig.ready(); profiles never imports campaigns).

A message row keeps the address it went to and, for in-app messages, the content as rendered
for the person (their name, their recommendations). Erasure blanks both and keeps the row, so
campaign reports still count the send; the customer it points to is a pseudonym by then.
"""

from __future__ import annotations

from campaigns.models import Message
from profiles.models import Customer

EXPORT_FIELDS = (
    "campaign_id",
    "campaign__name",
    "channel",
    "address",
    "status",
    "sent_at",
    "opened_at",
    "clicked_at",
    "dismissed_at",
    "unsubscribed_at",
    "converted_at",
    "payload",
)


def customer_messages_export(customer: Customer) -> dict:
    """The messages sent or meant for the customer, oldest first."""
    messages = Message.objects.filter(customer=customer).order_by("created_at", "pk")
    return {"messages": list(messages.values(*EXPORT_FIELDS))}


def customer_messages_erase(customer: Customer) -> int:
    """Blank the addresses and stored content of the customer's messages; returns how many
    rows held either."""
    return (
        Message.objects.filter(customer=customer)
        .exclude(address="", payload={})
        .update(address="", payload={})
    )

"""Reading message templates, and the live preview of one for a chosen customer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Q, QuerySet

from campaigns.models import MessageTemplate
from campaigns.personalization import context_for_customers, customer_for_preview
from campaigns.templating import (
    CHANNEL_PARTS,
    RenderedMessage,
    SmsLength,
    TemplatePartsError,
    TemplateRenderError,
    parts_compile,
    render,
    sms_segments,
)
from profiles.models import Customer


def message_template_list(*, filters: dict | None = None) -> QuerySet[MessageTemplate]:
    filters = filters or {}
    qs = MessageTemplate.objects.annotate(campaign_count=Count("campaigns"))
    if q := filters.get("q"):
        qs = qs.filter(Q(name__icontains=q) | Q(subject__icontains=q))
    if channel := filters.get("channel"):
        qs = qs.filter(channel=channel)
    return qs.order_by("name", "pk")


def message_template_get(*, pk: int) -> MessageTemplate | None:
    return MessageTemplate.objects.filter(pk=pk).first()


@dataclass(frozen=True)
class TemplatePreview:
    customer: Customer | None
    customer_query: str = ""
    message: RenderedMessage | None = None
    syntax_errors: dict[str, str] = field(default_factory=dict)  # {model field: message}
    render_error: TemplateRenderError | None = None
    sms: SmsLength | None = None
    context: dict[str, Any] = field(default_factory=dict)


def template_preview(
    *, channel: str, fields: Mapping[str, str], customer_query: str = "", campaign_name: str = ""
) -> TemplatePreview:
    """Render unsaved template fields ({model field: source}) for one customer: found by pk,
    storefront id or email, or a random buyer when `customer_query` is blank. A campaign's
    page passes its name, which templates see as `campaign.name`."""
    customer = customer_for_preview(customer_query)
    parts = {part: fields.get(name, "") for part, name, _ in CHANNEL_PARTS.get(channel, ())}
    try:
        compiled = parts_compile(channel, parts)
    except TemplatePartsError as exc:
        by_field = {part: name for part, name, _ in CHANNEL_PARTS.get(channel, ())}
        return TemplatePreview(
            customer=customer,
            customer_query=customer_query,
            syntax_errors={by_field.get(p, p): m for p, m in exc.errors.items()},
        )
    if customer is None:
        return TemplatePreview(customer=None, customer_query=customer_query)
    context = context_for_customers([customer.pk], campaign_name=campaign_name)[customer.pk]
    try:
        message = render(compiled, context)
    except TemplateRenderError as exc:
        return TemplatePreview(
            customer=customer, customer_query=customer_query, render_error=exc, context=context
        )
    sms = sms_segments(message.text) if channel == "sms" else None
    return TemplatePreview(
        customer=customer,
        customer_query=customer_query,
        message=message,
        sms=sms,
        context=context,
    )

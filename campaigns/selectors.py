"""Reading campaigns: the list with its figures, one campaign, its sending progress, the
preview of its variants and its report.

The figures come from aggregate queries with FILTER clauses over the campaign's messages
(one row per variant, or per campaign in the list), never from a loop over messages: a
campaign of 100,000 recipients costs the same few queries as one of ten.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Prefetch, Q, QuerySet, Sum, Value
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone

from campaigns.fanout import audience_size_get
from campaigns.models import (
    Campaign,
    CampaignVariant,
    Message,
    MessageStatus,
    SkipReason,
)
from campaigns.personalization import customer_for_preview
from campaigns.template_selectors import TemplatePreview, template_preview
from profiles.models import Customer

SENT = Q(status=MessageStatus.SENT)
HOLDOUT = Q(status=MessageStatus.SKIPPED, skip_reason=SkipReason.HOLDOUT)
GLOBAL_CONTROL = Q(status=MessageStatus.SKIPPED, skip_reason=SkipReason.GLOBAL_CONTROL)


def campaign_list(*, filters: dict | None = None) -> QuerySet[Campaign]:
    """Campaigns newest first; `parent` gives the occurrences of a recurring campaign. Their
    figures are `campaigns_with_figures`' (for one page, not every campaign)."""
    filters = filters or {}
    qs = Campaign.objects.select_related("segment", "template")
    if q := filters.get("q"):
        qs = qs.filter(name__icontains=q)
    if status := filters.get("status"):
        qs = qs.filter(status=status)
    if channel := filters.get("channel"):
        qs = qs.filter(channel=channel)
    if audience := filters.get("audience_type"):
        qs = qs.filter(audience_type=audience)
    if parent := filters.get("parent"):
        qs = qs.filter(parent=parent)
    return qs.order_by("-created_at", "-pk")


FIGURES = ("sent", "opened", "clicked", "converted")


def campaigns_with_figures(campaigns: Iterable[Campaign]) -> list[Campaign]:
    """The campaigns, each given `sent`, `opened`, `clicked` and `converted` counts of its
    sent messages, in one grouped query over the messages of these campaigns only (a list
    page must not aggregate the messages of every campaign ever sent)."""
    campaigns = list(campaigns)
    rows = (
        Message.objects.filter(campaign__in=[c.pk for c in campaigns], status=MessageStatus.SENT)
        .values("campaign_id")
        .annotate(
            sent=Count("pk"),
            opened=Count("pk", filter=Q(opened_at__isnull=False)),
            clicked=Count("pk", filter=Q(clicked_at__isnull=False)),
            converted=Count("pk", filter=Q(converted_at__isnull=False)),
        )
        .order_by()
    )
    by_campaign: dict[int, dict[str, Any]] = (
        {row["campaign_id"]: dict(row) for row in rows} if campaigns else {}
    )
    for campaign in campaigns:
        row = by_campaign.get(campaign.pk, {})
        for name in FIGURES:
            setattr(campaign, name, row.get(name, 0))
    return campaigns


def campaign_get(*, pk: int) -> Campaign | None:
    """One campaign with its audience, creator and variants (with their templates)."""
    return (
        Campaign.objects.select_related("segment", "template", "created_by", "parent")
        .prefetch_related(
            Prefetch(
                "variants",
                queryset=CampaignVariant.objects.select_related("template").order_by("pk"),
            )
        )
        .filter(pk=pk)
        .first()
    )


def campaign_qs_for_update() -> QuerySet[Campaign]:
    """Campaign rows locked for a read-then-write (status transitions)."""
    return Campaign.objects.select_for_update(of=("self",), no_key=True).order_by("pk")


# --- progress -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignProgress:
    """Where a launched campaign's sending stands: recipients decided (a row each), and of
    them sent, failed, skipped, and still queued or being sent; `audience` is the size the
    fan-out counted when it started (None for a journey, or when no longer known)."""

    decided: int
    sent: int
    failed: int
    skipped: int
    queued: int
    audience: int | None = None

    @property
    def percent_done(self) -> int:
        """Recipients settled (decided and no longer queued) out of the audience counted at
        launch, so the first batch is not 100 %. Members who joined the segment during the
        fan-out can make `decided` the larger; without a stored size (a journey) the decided
        rows are the whole."""
        whole = max(self.audience or 0, self.decided)
        return round(100 * (self.decided - self.queued) / whole) if whole else 0


def campaign_progress(*, campaign: Campaign) -> CampaignProgress:
    """One aggregate query over the campaign's messages that reads only campaign and status
    (counts of status, so an index-only scan of the (campaign, status) index serves it) and
    the audience size the fan-out stored in Redis: the page polls this every two seconds,
    so the segment is not evaluated here."""
    row = Message.objects.filter(campaign=campaign).aggregate(
        decided=Count("status"),
        sent=Count("status", filter=SENT),
        failed=Count("status", filter=Q(status=MessageStatus.FAILED)),
        skipped=Count("status", filter=Q(status=MessageStatus.SKIPPED)),
        queued=Count("status", filter=Q(status__in=[MessageStatus.QUEUED, MessageStatus.SENDING])),
    )
    return CampaignProgress(**row, audience=audience_size_get(campaign_id=campaign.pk))


# --- preview --------------------------------------------------------------------------------


@dataclass(frozen=True)
class VariantPreview:
    name: str
    template_name: str
    preview: TemplatePreview


@dataclass(frozen=True)
class CampaignPreview:
    customer: Customer | None
    customer_query: str
    variants: list[VariantPreview]


def campaign_preview(*, campaign: Campaign, customer_query: str = "") -> CampaignPreview:
    """Each variant rendered for one customer (by pk, storefront id or email; a random buyer
    when the query is blank), with the context dispatch would build for them. The customer
    is chosen once, so every variant shows the same person."""
    customer = customer_for_preview(customer_query)
    variants = list(campaign.variants.all())
    pairs = [(v.name, v.template) for v in variants]
    if not pairs and campaign.template is not None:
        pairs = [("Default", campaign.template)]
    out = []
    for name, template in pairs:
        preview = (
            template_preview(
                channel=template.channel,
                fields={
                    "subject": template.subject,
                    "html_body": template.html_body,
                    "body": template.body,
                    "url": template.url,
                    "icon": template.icon,
                },
                customer_query=str(customer.pk),
                campaign_name=campaign.name,
            )
            if customer is not None
            else TemplatePreview(customer=None, customer_query=customer_query)
        )
        out.append(VariantPreview(name=name, template_name=template.name, preview=preview))
    return CampaignPreview(customer=customer, customer_query=customer_query, variants=out)


# --- report ---------------------------------------------------------------------------------


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class ReportRow:
    """The outcomes of one variant (or of the whole campaign). Outcome counts are over sent
    messages; `holdout` and `holdout_converted` are the held-out recipients of the row."""

    name: str
    sent: int = 0
    delivered: int = 0
    bounced: int = 0
    opened: int = 0
    clicked: int = 0
    converted: int = 0
    unsubscribed: int = 0
    revenue: Decimal = Decimal("0")
    failed: int = 0
    skipped: int = 0
    holdout: int = 0
    holdout_converted: int = 0
    variant_id: int | None = None

    @property
    def open_rate(self) -> float | None:
        return _rate(self.opened, self.sent)

    @property
    def click_rate(self) -> float | None:
        return _rate(self.clicked, self.sent)

    @property
    def conversion_rate(self) -> float | None:
        return _rate(self.converted, self.sent)

    @property
    def holdout_conversion_rate(self) -> float | None:
        return _rate(self.holdout_converted, self.holdout)

    @property
    def lift(self) -> float | None:
        """Relative lift of the conversion rate over the holdout's: (treated - held) / held;
        None without a holdout or when no held-out recipient converted."""
        treated, held = self.conversion_rate, self.holdout_conversion_rate
        if treated is None or not held:
            return None
        return (treated - held) / held


@dataclass(frozen=True)
class CampaignReport:
    total: ReportRow
    variants: list[ReportRow]
    skipped_by_reason: list[tuple[str, str, int]]  # (reason, label, count), most first
    cost: Decimal | None
    global_control: int = 0
    global_control_converted: int = 0
    timeline: dict[str, list] = field(default_factory=dict)

    @property
    def roi(self) -> float | None:
        """(revenue - cost) / cost; None when the cost is not set or zero."""
        if not self.cost:
            return None
        return float((self.total.revenue - self.cost) / self.cost)

    @property
    def global_control_conversion_rate(self) -> float | None:
        return _rate(self.global_control_converted, self.global_control)


def _outcomes() -> dict:
    """The aggregate expressions of a ReportRow (FILTER clauses of one query)."""
    return {
        "sent": Count("pk", filter=SENT),
        "delivered": Count("pk", filter=SENT & Q(delivered_at__isnull=False)),
        "bounced": Count("pk", filter=SENT & Q(bounced_at__isnull=False)),
        "opened": Count("pk", filter=SENT & Q(opened_at__isnull=False)),
        "clicked": Count("pk", filter=SENT & Q(clicked_at__isnull=False)),
        "converted": Count("pk", filter=SENT & Q(converted_at__isnull=False)),
        "unsubscribed": Count("pk", filter=SENT & Q(unsubscribed_at__isnull=False)),
        "revenue": Sum("conversion_value", filter=SENT & Q(converted_at__isnull=False)),
        "failed": Count("pk", filter=Q(status=MessageStatus.FAILED)),
        "skipped": Count("pk", filter=Q(status=MessageStatus.SKIPPED)),
        "holdout": Count("pk", filter=HOLDOUT),
        "holdout_converted": Count("pk", filter=HOLDOUT & Q(converted_at__isnull=False)),
        "global_control": Count("pk", filter=GLOBAL_CONTROL),
        "global_control_converted": Count(
            "pk", filter=GLOBAL_CONTROL & Q(converted_at__isnull=False)
        ),
    }


def _row(name: str, values: dict, variant_id: int | None = None) -> ReportRow:
    fields = {k: v for k, v in values.items() if k in ReportRow.__dataclass_fields__}
    fields["revenue"] = fields.get("revenue") or Decimal("0")
    return ReportRow(name=name, variant_id=variant_id, **fields)


def campaign_report(*, campaign: Campaign) -> CampaignReport:
    """The campaign's outcomes in total and per variant, skips by reason and the timeline of
    opens, clicks and conversions. Four queries: variants, outcomes grouped by variant, skips
    grouped by reason, and the timeline."""
    messages = Message.objects.filter(campaign=campaign)
    names = dict(
        CampaignVariant.objects.filter(campaign=campaign).order_by("pk").values_list("pk", "name")
    )
    by_variant: dict[int | None, dict[str, Any]] = {}
    for row in messages.values("variant_id").annotate(**_outcomes()).order_by():
        values: dict[str, Any] = dict(row)
        by_variant[values.pop("variant_id")] = values
    rows = [_row(name, by_variant.get(pk, {}), pk) for pk, name in names.items()]
    if None in by_variant:  # a campaign without variants (its own template)
        rows.append(_row("Default" if not names else "No variant", by_variant[None]))
    total_values: dict[str, Any] = {}
    for values in by_variant.values():
        for key, value in values.items():
            total_values[key] = (total_values.get(key) or 0) + (value or 0)
    labels = dict(SkipReason.choices)
    skips = (
        messages.exclude(skip_reason="")
        .values_list("skip_reason")
        .annotate(n=Count("pk"))
        .order_by("-n", "skip_reason")
    )
    return CampaignReport(
        total=_row("All variants", total_values),
        variants=rows,
        skipped_by_reason=[(reason, labels.get(reason, reason), n) for reason, n in skips],
        cost=campaign.cost,
        global_control=total_values.get("global_control", 0),
        global_control_converted=total_values.get("global_control_converted", 0),
        timeline=campaign_timeline(campaign=campaign),
    )


TIMELINE_EVENTS = (
    ("opened_at", "Opens"),
    ("clicked_at", "Clicks"),
    ("converted_at", "Conversions"),
)
HOURLY_FOR = timedelta(days=3)


def campaign_timeline(*, campaign: Campaign) -> dict[str, list]:
    """{"Opens": [(bucket start, count), ...], "Clicks": ..., "Conversions": ...} of the
    campaign's sent messages: hourly buckets while the campaign is under three days old,
    daily after. One query (a UNION of one grouped select per outcome)."""
    start = campaign.started_at or campaign.created_at
    trunc = TruncHour if timezone.now() - start <= HOURLY_FOR else TruncDay
    messages = Message.objects.filter(campaign=campaign, status=MessageStatus.SENT)
    selects = [
        messages.filter(**{f"{column}__isnull": False})
        .annotate(bucket=trunc(column), label=Value(label))
        .values_list("label", "bucket")
        .annotate(n=Count("pk"))
        .order_by()
        for column, label in TIMELINE_EVENTS
    ]
    series: dict[str, list] = {label: [] for _, label in TIMELINE_EVENTS}
    for label, bucket, n in sorted(selects[0].union(*selects[1:], all=True)):
        series[label].append((bucket, n))
    return series

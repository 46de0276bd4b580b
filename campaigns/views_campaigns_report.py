"""A campaign's report page (outcomes in total and per variant, skips by reason, holdout
lift, ROI, plotly charts) and the per-variant table as CSV. The figures are
`campaigns.selectors.campaign_report`'s; this module only lays them out."""

from __future__ import annotations

import csv
import io
import json

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils.text import slugify
from django.views.decorators.http import require_GET

from campaigns.models import Campaign
from campaigns.selectors import CampaignReport, ReportRow, campaign_get, campaign_report
from marketing.common.htmx import HtmxHttpRequest

FUNNEL = (
    ("sent", "Sent"),
    ("delivered", "Delivered"),
    ("opened", "Opened"),
    ("clicked", "Clicked"),
    ("converted", "Converted"),
)
CSV_COLUMNS = (
    ("name", "variant"),
    ("sent", "sent"),
    ("delivered", "delivered"),
    ("bounced", "bounced"),
    ("opened", "opened"),
    ("clicked", "clicked"),
    ("converted", "converted"),
    ("revenue", "revenue"),
    ("unsubscribed", "unsubscribed"),
    ("failed", "failed"),
    ("skipped", "skipped"),
    ("holdout", "holdout"),
    ("holdout_converted", "holdout_converted"),
    ("open_rate", "open_rate"),
    ("click_rate", "click_rate"),
    ("conversion_rate", "conversion_rate"),
    ("holdout_conversion_rate", "holdout_conversion_rate"),
    ("lift", "lift"),
)


def _campaign_or_404(pk: int) -> Campaign:
    campaign = campaign_get(pk=pk)
    if campaign is None:
        raise Http404("No such campaign")
    return campaign


def report_funnel_chart(*, report: CampaignReport) -> list[dict]:
    """One plotly funnel per variant: sent → delivered → opened → clicked → converted."""
    if not report.total.sent:
        return []
    return [
        {
            "type": "funnel",
            "name": row.name,
            "y": [label for _, label in FUNNEL],
            "x": [getattr(row, name) for name, _ in FUNNEL],
            "textinfo": "value+percent initial",
        }
        for row in report.variants
    ]


def report_timeline_chart(*, report: CampaignReport) -> list[dict]:
    """Opens, clicks and conversions per hour (or day) as lines."""
    return [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": label,
            "x": [bucket.isoformat() for bucket, _ in points],
            "y": [n for _, n in points],
        }
        for label, points in report.timeline.items()
        if points
    ]


@require_GET
def campaign_report_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    campaign = _campaign_or_404(pk)
    report = campaign_report(campaign=campaign)
    funnel = report_funnel_chart(report=report)
    timeline = report_timeline_chart(report=report)
    context = {
        "campaign": campaign,
        "report": report,
        "rows": [*report.variants, report.total] if len(report.variants) > 1 else report.variants,
        "funnel_json": json.dumps(funnel),
        "funnel_layout": json.dumps({"funnelmode": "group", "height": 340}),
        "timeline_json": json.dumps(timeline),
        "timeline_layout": json.dumps({"height": 300, "yaxis": {"rangemode": "tozero"}}),
        "has_holdout": report.total.holdout > 0,
    }
    return render(request, "campaigns/campaign_report.html", context)


def _csv_value(row: ReportRow, name: str) -> str:
    value = getattr(row, name)
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


@require_GET
def campaign_report_csv_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The per-variant table (and the total) as CSV; rates as fractions, blank when there
    is nothing to divide by."""
    campaign = _campaign_or_404(pk)
    report = campaign_report(campaign=campaign)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([heading for _, heading in CSV_COLUMNS])
    for row in [*report.variants, report.total]:
        writer.writerow([_csv_value(row, name) for name, _ in CSV_COLUMNS])
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    filename = f"campaign-{campaign.pk}-{slugify(campaign.name) or 'report'}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response

"""A segment's page: what it is, its size over time, its members, refresh, delete, export."""

import json
from datetime import datetime

from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from marketing.common.htmx import HtmxHttpRequest
from marketing.common.listing import PAGE_SIZE, wants_fragment
from marketing.roles import require_edit
from profiles.models import Segment, SegmentKind
from profiles.segments.detail import (
    segment_definition_rows,
    segment_history_chart,
    segment_history_layout,
    segment_rules_in_words,
    segment_score_label,
    segment_used_by,
)
from profiles.segments.errors import SegmentExportChannelError, SegmentInUseError
from profiles.segments.export import (
    EXPORT_CHANNELS,
    segment_export_channels,
    segment_export_counts,
    segment_export_csv,
    segment_export_filename,
)
from profiles.segments.selectors import segment_get, segment_history, segment_members_ranked
from profiles.segments.services import segment_delete, segment_refresh_schedule

TEMPLATE = "profiles/segment_detail.html"
CHANNEL_LABELS = {"all": "All channels", "email": "Email", "sms": "SMS", "push": "Push"}
# The status fragment polls once a second; after this many polls it stops and says so.
STATUS_MAX_POLLS = 180


def _segment_or_404(pk: int) -> Segment:
    segment = segment_get(pk=pk)
    if segment is None:
        raise Http404("No such segment")
    return segment


def _stamp(when: datetime | None) -> str:
    return when.isoformat() if when else ""


def _context(request: HtmxHttpRequest, segment: Segment, *, members_only: bool = False) -> dict:
    members = Paginator(segment_members_ranked(segment=segment), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    context = {
        "segment": segment,
        "is_rules": segment.kind == SegmentKind.RULES,
        "page_obj": members,
        "score_label": segment_score_label(segment=segment),
    }
    if members_only:
        return context
    history = segment_history(segment=segment)
    return {
        **context,
        "rules_text": segment_rules_in_words(segment=segment),
        "definition_rows": segment_definition_rows(segment=segment),
        "chart_json": json.dumps(segment_history_chart(snapshots=history)),
        "chart_layout": json.dumps(segment_history_layout(snapshots=history)),
        "used_by": segment_used_by(segment=segment),
        "since": _stamp(segment.counted_at),
        # A rule segment just saved is counted by the worker a moment later: poll until then
        # (after an edit of its rules, until the count is newer than `since`).
        "refreshing": segment.kind == SegmentKind.RULES
        and (segment.counted_at is None or request.GET.get("since") == _stamp(segment.counted_at)),
        "next_poll": 1,
    }


@vary_on_headers("HX-Request", "HX-Target")
@require_GET
def segment_detail_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The page; htmx asks for the members table (paging) or the body (after a refresh)."""
    segment = _segment_or_404(pk)
    if not wants_fragment(request):
        return render(request, TEMPLATE, _context(request, segment))
    if request.htmx.target == "segment-members":
        context = _context(request, segment, members_only=True)
        return render(request, f"{TEMPLATE}#segment-members", context)
    return render(request, f"{TEMPLATE}#segment-body", _context(request, segment))


def _status(request: HtmxHttpRequest, segment: Segment, *, since: str, polls: int) -> HttpResponse:
    refreshed = _stamp(segment.counted_at) != since
    response = render(
        request,
        f"{TEMPLATE}#segment-status",
        {
            "segment": segment,
            "refreshing": not refreshed and polls < STATUS_MAX_POLLS,
            "gave_up": not refreshed and polls >= STATUS_MAX_POLLS,
            "since": since,
            "next_poll": polls + 1,
        },
    )
    if refreshed:
        response["HX-Trigger"] = "segment-refreshed"
    return response


@require_POST
def segment_refresh_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Schedule a refresh of a rule segment; the status fragment then polls until it ran."""
    require_edit(request)
    segment = _segment_or_404(pk)
    if segment.kind != SegmentKind.RULES:
        return HttpResponse(
            "Only rule segments are refreshed; the others are fixed lists.",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    segment_refresh_schedule(segment=segment)
    if not request.htmx:
        return redirect("profiles:segment-detail", pk=segment.pk)
    return _status(request, segment, since=_stamp(segment.counted_at), polls=0)


@require_GET
def segment_status_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """ "Refreshing…" until `counted_at` moves past `since`; then it triggers
    `segment-refreshed` so the page reloads the count, the chart and the members."""
    segment = _segment_or_404(pk)
    try:
        polls = max(0, int(request.GET.get("polls", "0")))
    except ValueError:
        polls = 0
    return _status(request, segment, since=request.GET.get("since", ""), polls=polls)


@require_POST
def segment_delete_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    require_edit(request)
    segment = _segment_or_404(pk)
    try:
        segment_delete(segment=segment)
    except SegmentInUseError as exc:
        context = {"segment": segment, "delete_error": exc.message}
        if request.htmx:
            return render(request, f"{TEMPLATE}#segment-message", context)
        return render(request, TEMPLATE, {**_context(request, segment), **context}, status=409)
    url = reverse("profiles:segment-list")
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@require_GET
def segment_export_panel_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The export form with the number of reachable endpoints per channel (loaded after the
    page, as a rule segment is evaluated for it)."""
    segment = _segment_or_404(pk)
    counts = segment_export_counts(segment=segment)
    channels = [("all", CHANNEL_LABELS["all"], sum(counts.values()))]
    channels += [(c, CHANNEL_LABELS[c], counts[c]) for c in EXPORT_CHANNELS]
    return render(request, f"{TEMPLATE}#segment-export", {"segment": segment, "channels": channels})


@require_GET
def segment_export_view(request: HtmxHttpRequest, pk: int) -> HttpResponseBase:
    """The segment's reachable, consenting endpoints as CSV (Pinpoint's columns), streamed."""
    segment = _segment_or_404(pk)
    channel = request.GET.get("channel", "all")
    try:
        segment_export_channels(channel)
    except SegmentExportChannelError as exc:
        return HttpResponse(exc.message, status=400, content_type="text/plain; charset=utf-8")
    response = StreamingHttpResponse(
        segment_export_csv(segment=segment, channel=channel),
        content_type="text/csv; charset=utf-8",
    )
    filename = segment_export_filename(segment=segment, channel=channel)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response

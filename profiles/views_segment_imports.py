"""Imported segments in the browser: upload a list, see the report, replace the members."""

from typing import Any

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods
from django.views.decorators.vary import vary_on_headers

from marketing.common.errors import ApplicationError
from marketing.common.htmx import HtmxHttpRequest
from marketing.roles import require_edit
from profiles.forms_segment_imports import SegmentImportFileForm, SegmentImportForm
from profiles.models import Segment
from profiles.segments.errors import SegmentNameTakenError
from profiles.segments.imports import (
    SegmentImportOutcome,
    imported_segment_get,
    segment_import_job_get,
    segment_import_start,
)

TEMPLATE = "profiles/segment_import.html"


def _render(
    request: HtmxHttpRequest,
    form: SegmentImportFileForm,
    *,
    segment: Segment | None = None,
    outcome: SegmentImportOutcome | None = None,
) -> HttpResponse:
    template = TEMPLATE
    if request.htmx and not request.htmx.history_restore_request:
        template += "#import-panel"
    context: dict[str, Any] = {
        "form": form,
        "segment": segment,
        "job": None,
        "result": None,
        "report": None,
    }
    if outcome is not None:
        context["job"] = outcome.job
        context["result"] = outcome.segment
        context["report"] = outcome.report.as_dict() if outcome.report else None
    return render(request, template, context)


def _post(request: HtmxHttpRequest, segment: Segment | None) -> HttpResponse:
    require_edit(request)
    form_class = SegmentImportForm if segment is None else SegmentImportFileForm
    form = form_class(request.POST, request.FILES)
    if not form.is_valid():
        return _render(request, form, segment=segment)
    try:
        outcome = segment_import_start(**form.cleaned_data, segment=segment, user=request.user)
    except ApplicationError as exc:
        form.add_error("name" if isinstance(exc, SegmentNameTakenError) else "file", exc.message)
        return _render(request, form, segment=segment)
    return _render(request, form_class(), segment=segment, outcome=outcome)


@vary_on_headers("HX-Request")
@require_http_methods(["GET", "POST"])
def segment_import_view(request: HtmxHttpRequest) -> HttpResponse:
    """Upload a CSV of customer ids or emails as a new imported segment."""
    if request.method == "POST":
        return _post(request, None)
    return _render(request, SegmentImportForm())


@vary_on_headers("HX-Request")
@require_http_methods(["GET", "POST"])
def segment_import_replace_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Replace the members of an imported segment with a new file; it keeps its name."""
    segment = imported_segment_get(pk=pk)
    if segment is None:
        raise Http404("No such imported segment")
    if request.method == "POST":
        return _post(request, segment)
    return _render(request, SegmentImportFileForm(), segment=segment)


@require_GET
def segment_import_job_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The progress of a big import; htmx polls it until the job ends, then it shows the
    report."""
    found = segment_import_job_get(pk=pk)
    if found is None:
        raise Http404("No such segment import")
    job, segment = found
    report = job.result.get("report") if segment is not None else None
    context = {"job": job, "result": segment, "report": report}
    return render(request, f"{TEMPLATE}#import-result", context)

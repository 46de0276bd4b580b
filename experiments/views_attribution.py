import json

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from experiments import attribution_reports
from experiments.forms_attribution import AttributionForm
from marketing.common.htmx import HtmxHttpRequest


@require_GET
@vary_on_headers("HX-Request")
def attribution_view(request: HtmxHttpRequest) -> HttpResponse:
    """Every model side by side per channel and per campaign, for a period (cached report)."""
    form = AttributionForm.from_params(request.GET)
    if not form.is_valid():
        return render(request, "experiments/attribution.html", {"form": form}, status=400)
    asked = attribution_reports.attribution_report_request(query=form.query(), user=request.user)
    context = {
        "form": form,
        "report": asked.report,
        "cached": asked.cached,
        "job": asked.job,
        "chart_json": json.dumps(
            attribution_reports.attribution_chart(asked.report) if asked.report else []
        ),
        "query_string": request.GET.urlencode(),
    }
    template = "experiments/attribution.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#attribution-report"
    return render(request, template, context)


@require_GET
def attribution_export_view(request: HtmxHttpRequest) -> HttpResponse:
    form = AttributionForm.from_params(request.GET)
    if not form.is_valid():
        return HttpResponse(
            json.dumps(form.errors.get_json_data()), status=400, content_type="application/json"
        )
    asked = attribution_reports.attribution_report_request(query=form.query(), user=request.user)
    if asked.report is None:
        body = {
            "code": "attribution_computing",
            "message": "The report is being computed; export it once the page shows it.",
            "extra": {"job": asked.job.pk if asked.job else None},
        }
        return HttpResponse(json.dumps(body), status=409, content_type="application/json")
    response = HttpResponse(
        attribution_reports.attribution_report_csv(asked.report), content_type="text/csv"
    )
    response["Content-Disposition"] = 'attachment; filename="attribution.csv"'
    return response

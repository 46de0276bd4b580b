import json

from django import forms
from django.contrib.auth.decorators import login_not_required
from django.http import (
    Http404,
    HttpResponse,
    HttpResponsePermanentRedirect,
    JsonResponse,
)
from django.shortcuts import render
from django.templatetags.static import static
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from insights.selectors_health import health_panel
from marketing import dashboard, selectors, services
from marketing.common.htmx import HtmxHttpRequest
from marketing.models import JobStatus


class DashboardWindowForm(forms.Form):
    window = forms.ChoiceField(choices=list(dashboard.WINDOW_LABELS.items()), required=False)


@require_GET
@vary_on_headers("HX-Request")
def dashboard_view(request: HtmxHttpRequest) -> HttpResponse:
    """The live dashboard: rollups only (marketing/dashboard.py); htmx polls the live part."""
    form = DashboardWindowForm(request.GET)
    if not form.is_valid():
        return render(request, "marketing/dashboard.html", {"form": form}, status=400)
    window = form.cleaned_data["window"] or "hour"
    board = dashboard.dashboard_for_window(window=window)
    context = {
        "form": form,
        "window": window,
        "windows": dashboard.WINDOW_LABELS,
        "window_label": dashboard.WINDOW_LABELS[window],
        "board": board,
        "charts": {k: json.dumps(v) for k, v in dashboard.dashboard_charts(board).items()},
        "panels": dashboard.dashboard_panels(),
        "brand_panel": health_panel(since=board.since, until=timezone.now()),
        "brand_days": 30 if window == "30d" else 7,
    }
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "marketing/dashboard.html#dashboard-live", context)
    context.update(counts=selectors.platform_counts(), jobs=selectors.job_list_recent(limit=5))
    return render(request, "marketing/dashboard.html", context)


@login_not_required
@never_cache
@require_GET
def healthz_view(request: HtmxHttpRequest) -> JsonResponse:
    report = services.health_check()
    body = {
        "status": "ok" if report.ok else "fail",
        "checks": {
            "database": report.database,
            "redis": report.redis,
            "celery": report.celery,
        },
        "celery_workers": report.workers,
        "beat_last_seen": report.beat_last_seen,
    }
    return JsonResponse(body, status=200 if report.ok else 503)


@login_not_required
@require_GET
def favicon_view(request: HtmxHttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico whatever the page says (the admin declares none)."""
    return HttpResponsePermanentRedirect(static("favicon.svg"))


@login_not_required
@require_GET
def bare_json_view(request: HtmxHttpRequest) -> JsonResponse:
    """The baseline of benchmarks/recommendations_latency.py: Django's request cycle and a JSON
    body, no database or cache. Routed only when settings.BENCHMARK_VIEWS is on."""
    return JsonResponse({"ok": True, "items": [{"id": f"i{n}", "score": 1.0} for n in range(10)]})


@require_GET
def job_detail_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The progress bar of a long job; htmx polls this fragment until the job ends."""
    job = selectors.job_get(pk=pk)
    if job is None:
        raise Http404("No such job")
    response = render(request, "marketing/partials/_job_progress.html", {"job": job})
    if job.status in (JobStatus.DONE, JobStatus.FAILED):
        # Pages that list what the job made (imports...) refresh on this event.
        response["HX-Trigger"] = "job-finished"
    return response

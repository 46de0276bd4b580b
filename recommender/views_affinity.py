"""The affinity segment page: a form that starts the build and a progress bar htmx polls."""

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from marketing import selectors as marketing_selectors
from marketing.common.errors import ApplicationError
from marketing.common.htmx import HtmxHttpRequest
from marketing.models import Job, JobStatus
from marketing.roles import require_edit
from recommender import segment_affinity
from recommender.forms_affinity import AffinitySegmentForm
from recommender.models import Item

TEMPLATE = "recommender/affinity_segment_create.html"
ITEM_CHOICES = 1000


def _job_context(job: Job | None) -> dict:
    segment_pk = (job.result or {}).get("segment") if job is not None else None
    done = job is not None and job.status == JobStatus.DONE
    url = reverse("profiles:segment-detail", args=[segment_pk]) if done and segment_pk else None
    return {"job": job, "segment_url": url}


def _items():
    """The item picker's suggestions (the field also takes any other item id)."""
    return (
        Item.objects.filter(is_active=True)
        .order_by("title")[:ITEM_CHOICES]
        .values("external_id", "title")
    )


@require_http_methods(["GET", "POST"])
def affinity_segment_create_view(request: HtmxHttpRequest) -> HttpResponse:
    if request.method == "GET":
        return render(request, TEMPLATE, {"form": AffinitySegmentForm(), "items": _items()})
    require_edit(request)
    form = AffinitySegmentForm(request.POST)
    job = None
    if form.is_valid():
        try:
            job = segment_affinity.affinity_segment_create(
                **form.request_kwargs(), user=request.user
            )
        except ApplicationError as exc:
            errors = exc.extra.get("errors") if isinstance(exc.extra, dict) else None
            if errors:
                for field, message in errors.items():
                    form.add_error(field if field in form.fields else None, message)
            else:
                form.add_error(None, exc.message)
    if request.htmx:
        return render(request, f"{TEMPLATE}#affinity-panel", {"form": form, **_job_context(job)})
    return render(request, TEMPLATE, {"form": form, "items": _items(), **_job_context(job)})


@require_GET
def affinity_segment_job_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    job = marketing_selectors.job_get(pk=pk)
    if job is None or job.kind != segment_affinity.JOB_KIND:
        raise Http404("No such job")
    return render(request, f"{TEMPLATE}#affinity-job", _job_context(job))

"""Machine-learned segments in the browser: run k-means, watch it, read the clusters, keep
one as a segment."""

import json

from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from marketing.common.errors import ApplicationError
from marketing.common.htmx import HtmxHttpRequest
from marketing.roles import require_edit
from profiles.forms_clusters import ClusterRunForm, ClusterSaveForm
from profiles.segments.clustering import FEATURE_GROUPS
from profiles.segments.clusters import (
    cluster_run_create,
    cluster_run_get,
    cluster_run_list_recent,
    cluster_run_saved_segments,
    cluster_run_silhouette_chart,
    cluster_save_as_segment,
)
from profiles.segments.errors import ClusterRunInvalidError

# Centroid values shown in the table (the full centroid is in the run's JSON).
KEY_FEATURES = (
    ("recency_days", "Days since seen"),
    ("orders", "Orders"),
    ("revenue", "Revenue"),
    ("average_order_value", "Avg order"),
    ("sessions", "Visits"),
)


@vary_on_headers("HX-Request")
@require_http_methods(["GET", "POST"])
def cluster_list_view(request: HtmxHttpRequest) -> HttpResponse:
    """The run form and the recent runs; a valid POST starts a run and opens its page."""
    form = ClusterRunForm()
    if request.method == "POST":
        require_edit(request)
        form = ClusterRunForm(request.POST)
        if form.is_valid():
            try:
                run = cluster_run_create(
                    k_min=form.cleaned_data["k_min"],
                    k_max=form.cleaned_data["k_max"],
                    k=form.cleaned_data["k"],
                    groups=form.cleaned_data["groups"],
                    user=request.user,
                )
            except ClusterRunInvalidError as exc:
                form.add_error(None, exc.message)
            else:
                url = reverse("profiles:cluster-detail", args=[run.pk])
                return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
        if request.htmx:
            return render(request, "profiles/cluster_list.html#run-form", {"form": form})
    return render(
        request, "profiles/cluster_list.html", {"form": form, "runs": cluster_run_list_recent()}
    )


@vary_on_headers("HX-Request")
@require_http_methods(["GET"])
def cluster_detail_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Progress while the run works, then k, silhouette by k and the clusters."""
    run = cluster_run_get(pk=pk)
    if run is None:
        raise Http404("No such clustering run")
    template = "profiles/cluster_detail.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#cluster-body"
    saved = cluster_run_saved_segments(run=run)
    clusters = [
        {
            **c,
            "segment": saved.get(c["index"]),
            "key_values": [c["centroid"].get(name) for name, _ in KEY_FEATURES],
            "form": ClusterSaveForm(
                initial={"cluster": c["index"], "name": _default_name(run.pk, c)}
            ),
        }
        for c in run.clusters
    ]
    context = {
        "run": run,
        "job": run.job,
        "clusters": clusters,
        "key_features": KEY_FEATURES,
        "groups": [FEATURE_GROUPS[g] for g in run.params.get("groups", FEATURE_GROUPS)],
        "chart_json": json.dumps(cluster_run_silhouette_chart(run=run)),
    }
    return render(request, template, context)


def _default_name(run_pk: int, cluster: dict) -> str:
    return f"Cluster {cluster['index'] + 1} (run {run_pk}): {cluster['description']}"[:200]


@require_POST
def cluster_save_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Keep one cluster as a segment; the form is replaced by a link to it."""
    require_edit(request)
    run = cluster_run_get(pk=pk)
    if run is None:
        raise Http404("No such clustering run")
    form = ClusterSaveForm(request.POST)
    segment = None
    if form.is_valid():
        try:
            segment = cluster_save_as_segment(
                run=run,
                cluster=form.cleaned_data["cluster"],
                name=form.cleaned_data["name"],
                user=request.user,
            )
        except ApplicationError as exc:
            form.add_error("name", exc.message)
        else:
            if not request.htmx:
                return redirect(f"/segments/{segment.pk}/")
    index = form.cleaned_data.get("cluster") if form.is_bound else None
    return render(
        request,
        "profiles/partials/_cluster_save.html",
        {"run": run, "form": form, "segment": segment, "index": index},
    )

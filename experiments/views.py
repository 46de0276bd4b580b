"""Experiment pages: the list, create and edit (variants as a formset), start and stop, and
the results with their charts. Reading is for every role; writes call `require_edit`, so
analysts get a 403. Rules across fields are the service's; its errors land on the form."""

from __future__ import annotations

import json

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from campaigns.selectors import campaign_get
from experiments import selectors, services
from experiments.forms import (
    CampaignExperimentForm,
    ExperimentFilterForm,
    ExperimentForm,
    VariantFormSet,
)
from experiments.models import Experiment, ExperimentStatus
from experiments.results import experiment_results
from marketing.common.errors import ApplicationError
from marketing.common.htmx import HtmxHttpRequest
from marketing.common.listing import render_list
from marketing.roles import require_edit

FORM_TEMPLATE = "experiments/experiment_form.html"
PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#9d755d")


@require_GET
@vary_on_headers("HX-Request")
def experiment_list_view(request: HtmxHttpRequest) -> HttpResponse:
    form = ExperimentFilterForm(request.GET)
    form.is_valid()
    return render_list(
        request,
        template="experiments/experiment_list.html",
        fragment="experiment-table",
        form=form,
        queryset=selectors.experiment_list(filters=form.cleaned_data),
    )


def _experiment_or_404(key: str) -> Experiment:
    experiment = selectors.experiment_get(key=key)
    if experiment is None:
        raise Http404("No such experiment")
    return experiment


def _render_form(request, form, formset, experiment, variant_errors=()) -> HttpResponse:
    context = {
        "form": form,
        "formset": formset,
        "experiment": experiment,
        "variant_errors": list(variant_errors) or [str(e) for e in formset.non_form_errors()],
    }
    name = f"{FORM_TEMPLATE}#experiment-editor" if request.htmx else FORM_TEMPLATE
    return render(request, name, context)


def _specs(form: ExperimentForm, formset) -> dict:
    data = form.cleaned_data
    guardrails = [
        services.MetricSpec(event_type=e, window_days=data["guardrail_window_days"])
        for e in data["guardrail_events"]
    ]
    variants = [
        services.VariantSpec(
            key=f.cleaned_data["key"],
            name=f.cleaned_data["name"],
            weight=f.cleaned_data["weight"],
            is_control=f.cleaned_data["is_control"],
            config=f.cleaned_data["config"],
        )
        for f in formset.forms
        if f.cleaned_data and not f.cleaned_data.get("DELETE")
    ]
    metric = services.MetricSpec(
        event_type=data["metric_event_type"],
        window_days=data["metric_window_days"],
        kind=data["metric_kind"],
    )
    return {"variants": variants, "metric": metric, "guardrails": guardrails}


def _save(request: HtmxHttpRequest, experiment: Experiment | None) -> HttpResponse:
    require_edit(request)
    form = ExperimentForm(request.POST, experiment=experiment)
    if experiment is not None:
        form.initial = ExperimentForm.initial_for(experiment)
    formset = VariantFormSet(request.POST, prefix="variants")
    variant_errors: list[str] = []
    if form.is_valid() and formset.is_valid():
        fields = {k: form.cleaned_data[k] for k in services.EDITABLE_FIELDS}
        try:
            if experiment is None:
                saved = services.experiment_create(
                    key=form.cleaned_data["key"],
                    **{k: v for k, v in fields.items()},
                    **_specs(form, formset),
                )
            else:
                saved = services.experiment_update(
                    experiment=experiment, fields=fields, **_specs(form, formset)
                )
        except ApplicationError as exc:
            problems = (exc.extra or {}).get("fields", {})
            for name, messages_ in problems.items():
                if name == "variants":
                    variant_errors.extend(messages_)
                else:
                    form.add_error(name if name in form.fields else None, messages_)
            if not problems:
                form.add_error(None, exc.message)
        else:
            url = reverse("experiments:experiment-results", args=[saved.key])
            return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    return _render_form(request, form, formset, experiment, variant_errors)


@require_http_methods(["GET", "POST"])
def experiment_create_view(request: HtmxHttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _save(request, None)
    require_edit(request)
    formset = VariantFormSet(
        prefix="variants",
        initial=[{"key": "control", "weight": 1, "is_control": True}, {"key": "b", "weight": 1}],
    )
    return _render_form(request, ExperimentForm(), formset, None)


@require_http_methods(["GET", "POST"])
def experiment_edit_view(request: HtmxHttpRequest, key: str) -> HttpResponse:
    experiment = _experiment_or_404(key)
    if request.method == "POST":
        return _save(request, experiment)
    require_edit(request)
    if experiment.status != ExperimentStatus.DRAFT:
        messages.warning(request, "Only draft experiments can be edited.")
        return redirect("experiments:experiment-results", key=key)
    formset = VariantFormSet(
        prefix="variants",
        initial=[
            {
                "key": v.key,
                "name": v.name,
                "weight": v.weight,
                "is_control": v.is_control,
                "config": json.dumps(v.config) if v.config else "",
            }
            for v in experiment.variants.all()
        ],
    )
    form = ExperimentForm(initial=ExperimentForm.initial_for(experiment), experiment=experiment)
    return _render_form(request, form, formset, experiment)


ACTIONS = {
    "start": (services.experiment_start, "Started: customers are being assigned."),
    "stop": (services.experiment_stop, "Stopped: no more assignments."),
}


@require_POST
def experiment_action_view(request: HtmxHttpRequest, key: str, action: str) -> HttpResponse:
    require_edit(request)
    if action not in ACTIONS:
        raise Http404("No such action")
    experiment = _experiment_or_404(key)
    service, done = ACTIONS[action]
    try:
        service(experiment=experiment)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, done)
    url = reverse("experiments:experiment-results", args=[key])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@require_POST
def campaign_experiment_create_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """ "Run as experiment" on the campaign's page: an experiment over the campaign's variants,
    started at once, so dispatch assigns each recipient through it."""
    require_edit(request)
    campaign = campaign_get(pk=pk)
    if campaign is None:
        raise Http404("No such campaign")
    form = CampaignExperimentForm(request.POST)
    back = reverse("campaigns:campaign-detail", args=[pk])
    if not form.is_valid():
        problems = "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in form.errors.items())
        messages.error(request, f"Not started: {problems}")
        return HttpResponseClientRedirect(back) if request.htmx else redirect(back)
    try:
        experiment = services.campaign_experiment_create(campaign=campaign, **form.cleaned_data)
    except ApplicationError as exc:
        fields = (exc.extra or {}).get("fields", {})
        messages.error(request, " ".join(m for ms in fields.values() for m in ms) or exc.message)
        return HttpResponseClientRedirect(back) if request.htmx else redirect(back)
    messages.success(request, "The campaign now runs as an experiment.")
    url = reverse("experiments:experiment-results", args=[experiment.key])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _band(x, lower, upper, color: str, name: str) -> list[dict]:
    """An interval as a filled band (upper, then lower filled up to it)."""
    return [
        {
            "x": x,
            "y": upper,
            "mode": "lines",
            "line": {"width": 0},
            "showlegend": False,
            "hoverinfo": "skip",
            "legendgroup": name,
        },
        {
            "x": x,
            "y": lower,
            "mode": "lines",
            "line": {"width": 0},
            "fill": "tonexty",
            "fillcolor": color + "33",
            "showlegend": False,
            "hoverinfo": "skip",
            "legendgroup": name,
        },
    ]


def _single_day_interval(trace: dict, value, lower, upper) -> dict:
    """With one day of data a band has no width to draw: the interval as error bars."""
    if len(trace["x"]) == 1 and None not in (value[0], lower[0], upper[0]):
        trace["error_y"] = {
            "type": "data",
            "symmetric": False,
            "array": [upper[0] - value[0]],
            "arrayminus": [value[0] - lower[0]],
            "color": trace["line"]["color"],
        }
    return trace


def results_figures(results: dict) -> dict[str, str]:
    """The two charts as plotly traces (JSON for static/js/charts.js): the cumulative metric
    per variant with its interval, and each variant's lift over control with its interval."""
    timeline = results["timeline"]
    days = timeline["days"]
    cumulative: list[dict] = []
    lift: list[dict] = []
    for i, variant in enumerate(results["variants"]):
        color = PALETTE[i % len(PALETTE)]
        series = timeline["variants"][variant["key"]]
        cumulative += _band(days, series["lower"], series["upper"], color, variant["key"])
        cumulative.append(
            _single_day_interval(
                {
                    "x": days,
                    "y": series["value"],
                    "mode": "lines",
                    "name": variant["key"],
                    "line": {"color": color},
                    "legendgroup": variant["key"],
                },
                series["value"],
                series["lower"],
                series["upper"],
            )
        )
        if variant["key"] in timeline["lift"]:
            values = timeline["lift"][variant["key"]]
            lift += _band(days, values["lower"], values["upper"], color, variant["key"])
            lift.append(
                _single_day_interval(
                    {
                        "x": days,
                        "y": values["estimate"],
                        "mode": "lines",
                        "name": f"{variant['key']} − control",
                        "line": {"color": color},
                    },
                    values["estimate"],
                    values["lower"],
                    values["upper"],
                )
            )
    if days:
        lift.append(
            {
                "x": [days[0], days[-1]],
                "y": [0, 0],
                "mode": "lines",
                "showlegend": False,
                "line": {"color": "#888", "dash": "dot", "width": 1},
                "hoverinfo": "skip",
            }
        )
    return {"cumulative": json.dumps(cumulative), "lift": json.dumps(lift)}


@require_GET
def experiment_results_view(request: HtmxHttpRequest, key: str) -> HttpResponse:
    experiment = _experiment_or_404(key)
    results = experiment_results(experiment=experiment, fresh=request.GET.get("fresh") == "1")
    analysis = results["analysis"] or {}
    comparisons = {c["variant"]: c for c in analysis.get("comparisons", [])}
    intervals = {v["variant"]: v["value"] for v in analysis.get("variants", [])}
    cuped = {
        c["variant"]: c
        for c in ((results["cuped"] or {}).get("analysis") or {}).get("comparisons", [])
    }
    rows = [
        {
            **variant,
            "interval": intervals.get(variant["key"]),
            "comparison": comparisons.get(variant["key"]),
            "cuped": cuped.get(variant["key"]),
            "ipw": (results["ipw"] or {}).get(variant["key"]),
        }
        for variant in results["variants"]
    ]
    return render(
        request,
        "experiments/experiment_results.html",
        {
            "experiment": experiment,
            "results": results,
            "rows": rows,
            "is_rate": experiment.metric_kind == "conversion",
            "figures": results_figures(results),
            "campaign": experiment.campaign,
        },
    )

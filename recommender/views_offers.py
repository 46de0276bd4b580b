"""Offer pages: the list with its Learning section (online reward per traffic kind, offline
evaluation of candidate settings as a polled job), create / edit, detail. Reading is for
every role; writes call `require_edit`. Model validation errors land on the form."""

import json
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from marketing.common.htmx import HtmxHttpRequest
from marketing.common.listing import render_list, wants_fragment
from marketing.roles import require_edit
from recommender import selectors_offers
from recommender.forms_offers import OfferFilterForm, OfferForm
from recommender.models import DecisionMode, Offer
from recommender.offers_learning import offer_evaluation_start
from recommender.offers_services import offer_save

FORM_TEMPLATE = "recommender/offer_form.html"
LEARNING_DAYS = 14
MODE_COLORS = {
    DecisionMode.LEARNED: "#4c78a8",
    DecisionMode.EXPLORE: "#f58518",
    DecisionMode.BASELINE: "#9d755d",
}


def reward_chart(*, days: int = LEARNING_DAYS) -> list[dict]:
    """Plotly traces: hourly mean reward of the learned policy's picks vs exploration (and
    the baseline in apprentice mode)."""
    timeline = selectors_offers.reward_timeline(since=timezone.now() - timedelta(days=days))
    labels: dict[str, str] = dict(DecisionMode.choices)
    return [
        {
            "type": "scatter",
            "mode": "lines",
            "name": labels[mode],
            "x": x,
            "y": y,
            "customdata": n,
            "hovertemplate": "%{y:.3f} (%{customdata} decisions)<extra>%{fullData.name}</extra>",
            "line": {"color": MODE_COLORS[DecisionMode(mode)]},
        }
        for mode, (x, y, n) in timeline.items()
    ]


def evaluation_rows(job) -> list[dict]:
    if job is None or not job.result:
        return []
    rows = []
    for name, values in job.result.get("settings", {}).items():
        dr = values.get("dr") or {}
        rows.append(
            {
                "name": name,
                "dr": dr.get("value"),
                "dr_stderr": dr.get("stderr"),
                "ips": (values.get("ips") or {}).get("value"),
                "snips": (values.get("snips") or {}).get("value"),
                "match_rate": values.get("match_rate"),
            }
        )
    rows.sort(key=lambda r: -(r["dr"] if r["dr"] is not None else -1.0))
    return rows


def evaluation_chart(rows: list[dict]) -> list[dict]:
    if not rows:
        return []
    ordered = list(reversed(rows))
    return [
        {
            "type": "bar",
            "orientation": "h",
            "name": "doubly robust",
            "y": [r["name"] for r in ordered],
            "x": [r["dr"] for r in ordered],
            "error_x": {"type": "data", "array": [1.96 * (r["dr_stderr"] or 0) for r in ordered]},
            "marker": {"color": "#4c78a8"},
        }
    ]


def _learning_context() -> dict:
    snapshot = selectors_offers.policy_snapshot_latest()
    job = selectors_offers.evaluation_latest()
    rows = evaluation_rows(job)
    return {
        "reward_chart_json": json.dumps(reward_chart()),
        "snapshot": snapshot,
        "exploration_percent": settings.OFFERS_EXPLORATION * 100,
        "apprentice": settings.OFFERS_APPRENTICE,
        "reward_wait_minutes": settings.OFFERS_REWARD_WAIT_SECONDS / 60,
        "job": job,
        "evaluation_rows": rows,
        "evaluation_chart_json": json.dumps(evaluation_chart(rows)),
    }


@require_GET
@vary_on_headers("HX-Request")
def offer_list_view(request: HtmxHttpRequest) -> HttpResponse:
    form = OfferFilterForm(request.GET)
    form.is_valid()
    return render_list(
        request,
        template="recommender/offer_list.html",
        fragment="offer-table",
        form=form,
        queryset=selectors_offers.offer_list(filters=form.cleaned_data),
        extra=None if wants_fragment(request) else _learning_context(),
    )


@require_GET
def offer_learning_view(request: HtmxHttpRequest) -> HttpResponse:
    """The Learning section alone (refreshed when an evaluation finishes)."""
    return render(request, "recommender/offer_list.html#offer-learning", _learning_context())


@require_POST
def offer_evaluation_start_view(request: HtmxHttpRequest) -> HttpResponse:
    require_edit(request)
    offer_evaluation_start(user=request.user)
    if request.htmx:
        return render(request, "recommender/offer_list.html#offer-learning", _learning_context())
    return redirect("recommender:offer-list")


def _offer_or_404(pk: int) -> Offer:
    offer = selectors_offers.offer_get(pk=pk)
    if offer is None:
        raise Http404("No such offer")
    return offer


def _save(request: HtmxHttpRequest, offer: Offer | None) -> HttpResponse:
    require_edit(request)
    form = OfferForm(request.POST, instance=offer or Offer())
    if form.is_valid():
        try:
            saved = offer_save(
                offer=offer, fields=form.fields_for_service(), items=form.cleaned_data["items"]
            )
        except ValidationError as exc:
            for name, errors in exc.message_dict.items():
                target = {"item": "item_id", "items": "extra_item_ids"}.get(name, name)
                form.add_error(target if target in form.fields else None, errors)
        else:
            url = reverse("recommender:offer-detail", args=[saved.pk])
            return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    template = f"{FORM_TEMPLATE}#offer-editor" if request.htmx else FORM_TEMPLATE
    return render(request, template, {"form": form, "offer": offer})


@require_http_methods(["GET", "POST"])
def offer_create_view(request: HtmxHttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _save(request, None)
    require_edit(request)
    return render(request, FORM_TEMPLATE, {"form": OfferForm(), "offer": None})


@require_http_methods(["GET", "POST"])
def offer_edit_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    offer = _offer_or_404(pk)
    if request.method == "POST":
        return _save(request, offer)
    require_edit(request)
    return render(request, FORM_TEMPLATE, {"form": OfferForm(instance=offer), "offer": offer})


@require_GET
def offer_detail_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    offer = _offer_or_404(pk)
    since = timezone.now() - timedelta(days=LEARNING_DAYS)
    return render(
        request,
        "recommender/offer_detail.html",
        {
            "offer": offer,
            "linked_items": list(offer.items.all()),
            "stats": selectors_offers.offer_stats(offer=offer, since=since),
            "days": LEARNING_DAYS,
        },
    )

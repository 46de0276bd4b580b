"""The brand health page, its alert banner and the acknowledge button."""

from __future__ import annotations

import json
from datetime import date
from urllib.parse import urlencode

from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from insights import selectors_health
from insights.forms import HealthWindowForm
from insights.health_charts import health_figures
from insights.services_health import brand_alert_acknowledge
from marketing.common.htmx import HtmxHttpRequest
from marketing.roles import require_edit

TEMPLATE = "insights/brand_health.html"


def posts_url(*, brand: int, sentiment: str = "", first: date, last: date) -> str:
    """The post list filtered to what a figure counts."""
    params = {"brand": brand, "date_from": first.isoformat(), "date_to": last.isoformat()}
    if sentiment:
        params["sentiment"] = sentiment
    return f"{reverse('insights:post-list')}?{urlencode(params)}"


@require_GET
@vary_on_headers("HX-Request")
def brand_health_view(request: HtmxHttpRequest, pk: int | None = None) -> HttpResponse:
    """One brand's health over the last 7, 30 or 90 days; /insights/health/ opens the chosen
    brand (?brand=), else our first."""
    form = HealthWindowForm(request.GET)
    valid = form.is_valid()
    days = form.cleaned_data["days"] if valid else selectors_health.DEFAULT_WINDOW_DAYS
    brands = selectors_health.brand_list_for_health()
    if pk is None:
        chosen = form.cleaned_data.get("brand") if valid else None
        if chosen or brands:
            url = reverse("insights:brand-health", args=[chosen or brands[0].pk])
            return redirect(f"{url}?days={days}")
        return render(request, TEMPLATE, {"brands": [], "form": form, "days": days})
    brand = next((b for b in brands if b.pk == pk), None) or selectors_health.brand_get(pk=pk)
    if brand is None:
        raise Http404("No such brand")
    health = selectors_health.brand_health(brand=brand, days=days)
    figures = health_figures(health, posts_url)
    window = health.window
    context = {
        "form": form,
        "days": days,
        "window_days": selectors_health.WINDOW_DAYS,
        "brands": brands,
        "brand": brand,
        "health": health,
        "figures": {
            name: {"data": json.dumps(f["data"]), "layout": json.dumps(f["layout"])}
            for name, f in figures.items()
        },
        "links": {
            label or "all": posts_url(
                brand=brand.pk, sentiment=label, first=window.first, last=window.last
            )
            for label in ("", "positive", "neutral", "negative")
        },
        "voice_links": {
            v.brand.pk: posts_url(brand=v.brand.pk, first=window.first, last=window.last)
            for v in health.voices
        },
    }
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, f"{TEMPLATE}#brand-health-body", context)
    return render(request, TEMPLATE, context)


@require_POST
def alert_acknowledge_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    require_edit(request)
    alert = selectors_health.brand_alert_get(pk=pk)
    if alert is None:
        raise Http404("No such alert")
    brand_alert_acknowledge(alert=alert)
    if request.htmx:
        return HttpResponse("")  # the banner is swapped out
    return redirect("insights:brand-health", pk=alert.brand_id)

"""Brand pages: the list, and the editor (create and edit). Every role reads; writes call
`require_edit`, so analysts get a 403."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseClientRedirect

from insights import selectors_health
from insights.forms import BrandForm
from insights.models import Brand
from insights.selectors import brand_list
from insights.services_health import BRAND_FIELDS, brand_save
from marketing.common.htmx import HtmxHttpRequest
from marketing.roles import require_edit
from marketing.selectors import job_get

FORM_TEMPLATE = "insights/brand_form.html"


def _brand_or_404(pk: int) -> Brand:
    brand = selectors_health.brand_get(pk=pk)
    if brand is None:
        raise Http404("No such brand")
    return brand


@require_GET
def brand_list_view(request: HtmxHttpRequest) -> HttpResponse:
    brands = brand_list().select_related("parent")
    job = None
    if job_id := request.GET.get("job", "").strip():
        job = job_get(pk=int(job_id)) if job_id.isdigit() else None
    return render(request, "insights/brand_list.html", {"brands": brands, "job": job})


def _render_form(request: HtmxHttpRequest, form: BrandForm, brand: Brand | None) -> HttpResponse:
    name = f"{FORM_TEMPLATE}#brand-editor" if request.htmx else FORM_TEMPLATE
    return render(request, name, {"form": form, "brand": brand})


def _save(request: HtmxHttpRequest, brand: Brand | None) -> HttpResponse:
    require_edit(request)
    form = BrandForm(request.POST, brand=brand)
    if form.is_valid():
        fields = {name: form.cleaned_data[name] for name in BRAND_FIELDS}
        try:
            saved = brand_save(brand=brand, fields=fields, user=request.user)
        except ValidationError as exc:
            for name, problems in exc.message_dict.items():
                form.add_error(name if name in form.fields else None, problems)
        else:
            url = reverse("insights:brand-list")
            if saved.rescan_job is not None:
                url += f"?job={saved.rescan_job.pk}"
            return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    return _render_form(request, form, brand)


@require_http_methods(["GET", "POST"])
def brand_create_view(request: HtmxHttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _save(request, None)
    require_edit(request)
    return _render_form(request, BrandForm(), None)


@require_http_methods(["GET", "POST"])
def brand_edit_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    brand = _brand_or_404(pk)
    if request.method == "POST":
        return _save(request, brand)
    require_edit(request)
    return _render_form(request, BrandForm(brand=brand), brand)

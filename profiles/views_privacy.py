"""Consent, export and erasure from the customer page, and the public unsubscribe page."""

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from marketing.common.errors import ApplicationError
from marketing.common.htmx import HtmxHttpRequest
from marketing.roles import require_edit
from profiles import consent, privacy, selectors
from profiles.forms_privacy import ConsentForm, EraseForm
from profiles.models import ConsentSource


def _customer_or_404(pk: int):
    customer = selectors.customer_get(pk=pk)
    if customer is None or customer.erased_at is not None:
        raise Http404("No such customer")
    return customer


@require_POST
def customer_consent_update_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    require_edit(request)
    customer = _customer_or_404(pk)
    form = ConsentForm(request.POST)
    if form.is_valid():
        consent.consent_set(
            customer=customer,
            purpose=form.cleaned_data["purpose"],
            granted=bool(form.cleaned_data["granted"]),
            source=ConsentSource.UI,
            actor=f"user:{request.user.get_username()}",
            note=form.cleaned_data["note"],
        )
    return render(
        request,
        "profiles/customer_detail.html#consent-panel",
        {
            "customer": customer,
            "consent_rows": selectors.consent_rows(customer=customer),
            "consent_trail": selectors.consent_history(customer=customer),
            "consent_form_errors": form.errors,
        },
    )


@require_GET
def customer_export_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    customer = _customer_or_404(pk)
    body = json.dumps(privacy.privacy_export(customer=customer), cls=DjangoJSONEncoder, indent=2)
    response = HttpResponse(body, content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="customer-{customer.pk}.json"'
    return response


@require_POST
def customer_erase_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    require_edit(request)
    customer = _customer_or_404(pk)
    form = EraseForm(request.POST, expected=customer.external_id)
    if not form.is_valid():
        return render(
            request,
            "profiles/customer_detail.html#erase-panel",
            {"customer": customer, "erase_form": form},
        )
    erasure = privacy.customer_erase(
        customer=customer, source="ui", actor=f"user:{request.user.get_username()}"
    )
    messages.success(request, f"Erased. Only the pseudonym {erasure.pseudonym} remains.")
    return HttpResponseClientRedirect(reverse("profiles:customer-list"))


@login_not_required
@csrf_exempt  # the recipient's mail client posts here (RFC 8058 one-click); the token is signed
@require_http_methods(["GET", "POST"])
def unsubscribe_view(request: HtmxHttpRequest, token: str) -> HttpResponse:
    try:
        customer, purpose = consent.unsubscribe_token_read(token)
    except ApplicationError as exc:
        return render(request, "profiles/unsubscribe.html", {"error": exc.message}, status=400)
    done = False
    if request.method == "POST":
        consent.consent_withdraw_by_token(token=token)
        done = True
    return render(
        request,
        "profiles/unsubscribe.html",
        {"purpose_label": dict(consent.ConsentPurpose.choices)[purpose], "done": done},
    )

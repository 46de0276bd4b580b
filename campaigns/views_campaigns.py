"""Campaign pages: create and edit (with the variants as an inline formset), the detail page
with the preview of each variant for a chosen customer, the actions (send now, schedule,
pause, resume, cancel, duplicate) and the progress of a sending campaign.

The rules across fields are the service's; its `ValidationError` lands on the form fields
(and on the variants). Reading, previewing and the progress are for every role; writes call
`require_edit`, so analysts get a 403.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.forms import BaseInlineFormSet
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from campaigns import lifecycle, services
from campaigns.forms import (
    CampaignForm,
    CampaignPreviewForm,
    CampaignVariantForm,
    CampaignVariantFormSet,
)
from campaigns.models import (
    AudienceType,
    Campaign,
    CampaignStatus,
    CampaignVariant,
    ScheduleType,
)
from campaigns.selectors import (
    campaign_get,
    campaign_list,
    campaign_preview,
    campaign_progress,
    campaigns_with_figures,
)
from marketing.common.errors import ApplicationError
from marketing.common.htmx import HtmxHttpRequest
from marketing.roles import require_edit

if TYPE_CHECKING:
    VariantFormSet = BaseInlineFormSet[CampaignVariant, Campaign, CampaignVariantForm]
FORM_TEMPLATE = "campaigns/campaign_form.html"
DETAIL_TEMPLATE = "campaigns/campaign_detail.html"
# While sending, the progress fragment polls every 2 s; these statuses are still moving.
MOVING = (CampaignStatus.SENDING,)
OCCURRENCES_SHOWN = 50

ACTIONS: dict[str, tuple[Callable[..., Campaign], str]] = {
    "send": (lifecycle.campaign_launch, "Sending started."),
    "schedule": (services.campaign_schedule, "Scheduled."),
    "unschedule": (services.campaign_unschedule, "Unscheduled: back to draft."),
    "pause": (lifecycle.campaign_pause, "Paused."),
    "resume": (lifecycle.campaign_resume, "Resumed."),
    "cancel": (services.campaign_cancel, "Cancelled."),
    "end": (lifecycle.campaign_end, "Journey ended: nobody enters it any more."),
}


def _campaign_or_404(pk: int) -> Campaign:
    campaign = campaign_get(pk=pk)
    if campaign is None:
        raise Http404("No such campaign")
    return campaign


def _formset(data=None, *, instance: Campaign | None = None) -> VariantFormSet:
    return CampaignVariantFormSet(data, instance=instance, prefix="variants")


def _variant_specs(formset: VariantFormSet) -> list[services.VariantSpec]:
    specs = []
    for form in formset.forms:
        data = getattr(form, "cleaned_data", None)
        if not data or data.get("DELETE") or not form.has_changed() and not form.instance.pk:
            continue
        specs.append(
            services.VariantSpec(
                name=data["name"],
                template=data["template"],
                weight=data["weight"],
                pk=form.instance.pk,
            )
        )
    return specs


def _render_form(
    request: HtmxHttpRequest,
    form: CampaignForm,
    formset: VariantFormSet,
    campaign: Campaign | None,
    *,
    variant_errors: list[str] | None = None,
) -> HttpResponse:
    context = {
        "form": form,
        "formset": formset,
        "campaign": campaign,
        "variant_errors": variant_errors or [str(e) for e in formset.non_form_errors()],
    }
    name = f"{FORM_TEMPLATE}#campaign-editor" if request.htmx else FORM_TEMPLATE
    return render(request, name, context)


def _save(request: HtmxHttpRequest, campaign: Campaign | None) -> HttpResponse:
    require_edit(request)
    form = CampaignForm(request.POST, instance=campaign)
    formset = _formset(request.POST, instance=campaign)
    variant_errors: list[str] = []
    if form.is_valid() and formset.is_valid():
        fields = {name: form.cleaned_data[name] for name in services.CAMPAIGN_FIELDS}
        variants = _variant_specs(formset)
        try:
            if campaign is None:
                saved = services.campaign_create(
                    fields=fields, variants=variants, created_by=request.user
                )
            else:
                saved = services.campaign_update(
                    campaign=campaign, fields=fields, variants=variants
                )
        except ValidationError as exc:
            for name, problems in exc.message_dict.items():
                if name == "variants":
                    variant_errors.extend(problems)
                else:
                    form.add_error(name if name in form.fields else None, problems)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            url = reverse("campaigns:campaign-detail", args=[saved.pk])
            return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    return _render_form(request, form, formset, campaign, variant_errors=variant_errors)


@require_http_methods(["GET", "POST"])
def campaign_create_view(request: HtmxHttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _save(request, None)
    require_edit(request)
    form = CampaignForm(initial={"segment": request.GET.get("segment")})
    return _render_form(request, form, _formset(), None)


@require_http_methods(["GET", "POST"])
def campaign_edit_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    campaign = _campaign_or_404(pk)
    if request.method == "POST":
        return _save(request, campaign)
    require_edit(request)
    if campaign.status not in services.EDITABLE:
        messages.warning(
            request,
            f"This campaign is {campaign.get_status_display().lower()}; only drafts and "
            "scheduled campaigns can be edited. Duplicate it to start a new one.",
        )
        return redirect("campaigns:campaign-detail", pk=pk)
    return _render_form(
        request, CampaignForm(instance=campaign), _formset(instance=campaign), campaign
    )


def _schedule_text(campaign: Campaign) -> str:
    """The schedule in words, in the server's timezone ("Daily from 2026-12-03 09:00 until
    ...", "On 2026-12-24 at 10:00 in each recipient's timezone")."""
    at = timezone.localtime(campaign.scheduled_at) if campaign.scheduled_at else None
    stamp = f"{at:%Y-%m-%d %H:%M}" if at else "?"
    if campaign.schedule_type == ScheduleType.AT:
        return f"At {stamp}"
    if campaign.schedule_type == ScheduleType.RECURRING:
        until = campaign.recurrence_until
        end = f" until {timezone.localtime(until):%Y-%m-%d %H:%M}" if until else ""
        return f"{campaign.get_recurrence_display()} from {stamp}{end}"
    if campaign.schedule_type == ScheduleType.LOCAL_TIME:
        local = f"{campaign.send_local_time:%H:%M}" if campaign.send_local_time else "?"
        day = f"{at:%Y-%m-%d}" if at else "?"
        return f"On {day} at {local} in each recipient's timezone"
    return "When sent (“Send now”)"


def _progress_context(campaign: Campaign) -> dict:
    return {
        "campaign": campaign,
        "progress": campaign_progress(campaign=campaign),
        # A journey stays "sending" while it is active: no progress to wait for.
        "polling": campaign.status in MOVING and campaign.audience_type == AudienceType.SEGMENT,
    }


@require_GET
@vary_on_headers("HX-Request")
def campaign_detail_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    campaign = _campaign_or_404(pk)
    query = request.GET.get("customer", "")
    context = {
        **_progress_context(campaign),
        "editable": campaign.status in services.EDITABLE,
        "cancellable": services.CANCELLABLE,
        "schedule_text": _schedule_text(campaign),
        "scheduled_label": _schedule_text(campaign).lower(),
        "preview": campaign_preview(campaign=campaign, customer_query=query),
        "preview_form": CampaignPreviewForm(initial={"customer": query}),
        "variants": list(campaign.variants.all()),
        "occurrences": (
            campaigns_with_figures(campaign_list(filters={"parent": campaign})[:OCCURRENCES_SHOWN])
            if campaign.schedule_type == ScheduleType.RECURRING
            else []
        ),
    }
    return render(request, DETAIL_TEMPLATE, context)


@require_GET
def campaign_preview_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The variants rendered for the searched customer; writes nothing (analysts may)."""
    campaign = _campaign_or_404(pk)
    form = CampaignPreviewForm(request.GET)
    query = form.cleaned_data["customer"] if form.is_valid() else ""
    preview = campaign_preview(campaign=campaign, customer_query=query)
    return render(
        request, f"{DETAIL_TEMPLATE}#campaign-preview", {"campaign": campaign, "preview": preview}
    )


@require_GET
def campaign_progress_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The counts of a sending campaign; the fragment stops polling once it is not sending,
    and then tells the page to reload its header (status and actions)."""
    campaign = _campaign_or_404(pk)
    context = _progress_context(campaign)
    response = render(request, f"{DETAIL_TEMPLATE}#campaign-progress", context)
    if not context["polling"] and request.GET.get("was") == CampaignStatus.SENDING:
        response["HX-Refresh"] = "true"
    return response


@require_POST
def campaign_action_view(request: HtmxHttpRequest, pk: int, action: str) -> HttpResponse:
    """One status change; the outcome (or why not) is a flash message on the detail page."""
    require_edit(request)
    campaign = _campaign_or_404(pk)
    url = reverse("campaigns:campaign-detail", args=[pk])
    if action == "duplicate":
        copy = services.campaign_duplicate(campaign=campaign, created_by=request.user)
        messages.success(request, f"Duplicated as {copy.name!r}; edit it before sending.")
        url = reverse("campaigns:campaign-edit", args=[copy.pk])
    elif action in ACTIONS:
        service, done = ACTIONS[action]
        try:
            service(campaign=campaign)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, done)
    else:
        raise Http404("No such action")
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)

"""Message templates in the browser: the list, and the editor with its live preview.

Every change in the editor posts the whole form to the preview endpoint, which compiles the
unsaved parts and renders them for the chosen customer (syntax errors per field, render
errors with the failing variable); "Save" posts the same form to the create or edit view.
The preview writes nothing, so analysts may use it; saving is for editors only.
"""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from campaigns.forms import MessageTemplateFilterForm, MessageTemplateForm, TemplatePreviewForm
from campaigns.models import MessageTemplate
from campaigns.template_selectors import (
    TemplatePreview,
    message_template_get,
    message_template_list,
    template_preview,
)
from campaigns.template_services import message_template_create, message_template_update
from campaigns.templating import CHANNEL_PARTS
from marketing.common.htmx import HtmxHttpRequest
from marketing.common.listing import render_list
from marketing.roles import require_edit, user_can_edit

TEMPLATE = "campaigns/template_form.html"
FIELDS = ("subject", "html_body", "body", "url", "icon")


def _field_channels() -> dict[str, str]:
    """{model field: "email push ..."}: which channels show each field in the editor."""
    out: dict[str, list[str]] = {name: [] for name in FIELDS}
    for channel, parts in CHANNEL_PARTS.items():
        for _part, name, _label in parts:
            out[name].append(channel)
    return {name: " ".join(channels) for name, channels in out.items()}


def _preview_for(data) -> TemplatePreview:
    preview_form = TemplatePreviewForm(data)
    query = preview_form.cleaned_data["customer"] if preview_form.is_valid() else ""
    kept = str(data.get("preview_pk", ""))
    # Blank search: keep the random customer the panel already shows, not a new one per key.
    lookup = query or (kept if kept.isdigit() else "")
    return template_preview(
        channel=data.get("channel", "email"),
        fields={name: data.get(name, "") for name in FIELDS},
        customer_query=lookup,
    )


def _render(
    request: HtmxHttpRequest,
    form: MessageTemplateForm,
    template: MessageTemplate | None,
    *,
    preview: TemplatePreview,
    fragment: str = "",
    status: int = 200,
) -> HttpResponse:
    channels = _field_channels()
    context = {
        "form": form,
        "template_obj": template,
        "preview": preview,
        "preview_form": TemplatePreviewForm(initial={"customer": preview.customer_query}),
        "field_rows": [(form[name], channels.get(name, "")) for name in form.fields],
        "context_json": json.dumps(preview.context, indent=2, default=str, ensure_ascii=False),
        "can_save": user_can_edit(request.user),
    }
    name = f"{TEMPLATE}#{fragment}" if fragment else TEMPLATE
    return render(request, name, context, status=status)


def _get(pk: int) -> MessageTemplate:
    template = message_template_get(pk=pk)
    if template is None:
        raise Http404("No such template")
    return template


def _save(request: HtmxHttpRequest, template: MessageTemplate | None) -> HttpResponse:
    require_edit(request)
    form = MessageTemplateForm(request.POST, instance=template)
    fragment = "template-editor" if request.htmx else ""
    if form.is_valid():
        data = {name: form.cleaned_data[name] for name in MessageTemplateForm.Meta.fields}
        try:
            if template is None:
                message_template_create(**data)
            else:
                message_template_update(template=template, **data)
        except ValidationError as exc:
            for name, messages in exc.message_dict.items():
                form.add_error(name if name in form.fields else None, messages)
        else:
            url = reverse("campaigns:template-list")
            return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    return _render(request, form, template, preview=_preview_for(request.POST), fragment=fragment)


@require_GET
@vary_on_headers("HX-Request")
def template_list_view(request: HtmxHttpRequest) -> HttpResponse:
    form = MessageTemplateFilterForm(request.GET)
    form.is_valid()
    return render_list(
        request,
        template="campaigns/template_list.html",
        fragment="template-table",
        form=form,
        queryset=message_template_list(filters=form.cleaned_data),
    )


@require_http_methods(["GET", "POST"])
def template_create_view(request: HtmxHttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _save(request, None)
    require_edit(request)
    channel = request.GET.get("channel", "email")
    initial = {"channel": channel if channel in CHANNEL_PARTS else "email"}
    form = MessageTemplateForm(initial=initial)
    preview = template_preview(channel=initial["channel"], fields={})
    return _render(request, form, None, preview=preview)


@require_http_methods(["GET", "POST"])
def template_edit_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    template = _get(pk)
    if request.method == "POST":
        return _save(request, template)
    form = MessageTemplateForm(instance=template)
    preview = template_preview(
        channel=template.channel,
        fields={name: getattr(template, name) for name in FIELDS},
        customer_query=request.GET.get("customer", ""),
    )
    return _render(request, form, template, preview=preview)


@require_POST
def template_preview_view(request: HtmxHttpRequest) -> HttpResponse:
    """The preview panel for the posted (unsaved) template; writes nothing."""
    form = MessageTemplateForm(request.POST)
    return _render(
        request, form, None, preview=_preview_for(request.POST), fragment="template-preview"
    )

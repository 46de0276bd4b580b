"""Rule segments in the browser: build the rules with a live count and sample, then save.

The whole tree is one form (see profiles/forms_segment_builder.py). Every change posts it to
the builder endpoint, which re-renders the tree (widgets fitting each condition, errors next
to the offending one) and the preview; "Save" posts the same form to the create or edit view.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from marketing.common.htmx import HtmxHttpRequest
from marketing.roles import require_edit
from profiles.forms_segment_builder import (
    STARTERS,
    SegmentRulesForm,
    errors_by_path,
    fields_to_rules,
    rules_apply_action,
    rules_default,
    rules_starter,
)
from profiles.models import Segment, SegmentKind
from profiles.segment_builder_context import BuilderChoices, field_choices, tree_context
from profiles.segments.errors import InvalidSegmentRulesError, SegmentNameTakenError
from profiles.segments.selectors import (
    SegmentPreview,
    segment_brands,
    segment_categories,
    segment_get,
    segment_preview,
)
from profiles.segments.services import segment_create, segment_update

TEMPLATE = "profiles/segment_form.html"


def _rule_segment(pk: int) -> Segment:
    segment = segment_get(pk=pk)
    if segment is None:
        raise Http404("No such segment")
    return segment


def _choices(segment: Segment | None) -> BuilderChoices:
    others = Segment.objects.order_by("name").values_list("pk", "name")
    if segment is not None:
        others = others.exclude(pk=segment.pk)
    return BuilderChoices(
        categories=segment_categories(), segments=list(others), brands=segment_brands()
    )


def _builder_context(
    rules: dict, segment: Segment | None, *, preview: bool = True
) -> tuple[dict[str, Any], SegmentPreview | None]:
    """The tree and, when the rules are valid, the live count and sample."""
    result: SegmentPreview | None = None
    errors: dict[str, str] = {}
    if preview:
        try:
            result = segment_preview(rules=rules, segment_id=segment.pk if segment else None)
        except InvalidSegmentRulesError as exc:
            errors = errors_by_path(exc.extra.get("errors") or {"": exc.message})
    context = {
        "tree": tree_context(rules, errors=errors, choices=_choices(segment)),
        "field_choices": field_choices(),
        "preview": result,
        "rule_errors": errors,
        "segment": segment,
    }
    return context, result


def _render(
    request: HtmxHttpRequest,
    form: SegmentRulesForm,
    rules: dict,
    segment: Segment | None,
    *,
    fragment: str = "",
) -> HttpResponse:
    context, result = _builder_context(rules, segment)
    context["form"] = form
    context["starters"] = [(key, label) for key, (label, _) in STARTERS.items()]
    template = f"{TEMPLATE}#{fragment}" if fragment else TEMPLATE
    response = render(request, template, context)
    if result is not None:
        response["X-Segment-Count"] = str(result.count)
    return response


def _save(request: HtmxHttpRequest, segment: Segment | None) -> HttpResponse:
    form = SegmentRulesForm(request.POST)
    rules = fields_to_rules(request.POST)
    fragment = "segment-editor" if request.htmx else ""
    if not form.is_valid():
        return _render(request, form, rules, segment, fragment=fragment)
    data = form.cleaned_data
    old_rules, old_counted_at = (segment.rules, segment.counted_at) if segment else (None, None)
    try:
        if segment is None:
            saved = segment_create(
                name=data["name"],
                description=data["description"],
                rules=rules,
                user=request.user,
            )
        else:
            saved = segment_update(
                segment=segment,
                name=data["name"],
                description=data["description"],
                rules=rules,
            )
    except SegmentNameTakenError as exc:
        form.add_error("name", exc.extra.get("errors", {}).get("name") or exc.message)
        return _render(request, form, rules, segment, fragment=fragment)
    except InvalidSegmentRulesError:
        form.add_error(None, "The rules have errors; see the conditions marked below.")
        return _render(request, form, rules, segment, fragment=fragment)
    url = reverse("profiles:segment-detail", args=[saved.pk])
    if segment is not None and saved.rules != old_rules and old_counted_at is not None:
        # New rules are counted by the worker: the page polls until the count moves on.
        url += "?" + urlencode({"since": old_counted_at.isoformat()})
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@require_http_methods(["GET", "POST"])
def segment_create_view(request: HtmxHttpRequest) -> HttpResponse:
    """A new rule segment; `?starter=<name>` begins from one of the STARTERS."""
    require_edit(request)
    if request.method == "POST":
        return _save(request, None)
    return _render(
        request,
        SegmentRulesForm(),
        rules_starter(request.GET.get("starter", ""), categories=segment_categories()),
        None,
    )


@require_http_methods(["GET", "POST"])
def segment_edit_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Edit a rule segment (the other kinds are fixed lists: their page is the detail)."""
    require_edit(request)
    segment = _rule_segment(pk)
    if segment.kind != SegmentKind.RULES:
        return redirect("profiles:segment-detail", pk=segment.pk)
    if request.method == "POST":
        return _save(request, segment)
    form = SegmentRulesForm(initial={"name": segment.name, "description": segment.description})
    return _render(request, form, segment.rules or rules_default(), segment)


@require_POST
def segment_builder_view(request: HtmxHttpRequest) -> HttpResponse:
    """The tree after a change or a button, with the live count and sample (htmx)."""
    require_edit(request)
    segment = None
    segment_pk = request.POST.get("segment", "")
    if segment_pk.isdigit():
        segment = _rule_segment(int(segment_pk))
        if segment.kind != SegmentKind.RULES:
            raise Http404("Only rule segments have a builder")
    rules = rules_apply_action(fields_to_rules(request.POST), request.POST.get("action", ""))
    return _render(request, SegmentRulesForm(), rules, segment, fragment="segment-builder")

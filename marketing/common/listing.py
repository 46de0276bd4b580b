"""What every list page shares: a search box, optional choice filters, paging and the htmx
fragment of its table."""

from django import forms
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import render

from marketing.common.htmx import HtmxHttpRequest

PAGE_SIZE = 50


def search_field(*, placeholder: str, label: str) -> forms.CharField:
    return forms.CharField(
        required=False,
        max_length=200,
        widget=forms.TextInput(
            attrs={
                "type": "search",
                "placeholder": placeholder,
                "aria-label": label,
                "autocomplete": "off",
            }
        ),
    )


def choice_filter(*, choices, empty: str, label: str) -> forms.ChoiceField:
    return forms.ChoiceField(
        required=False,
        choices=[("", empty), *choices],
        widget=forms.Select(attrs={"aria-label": label}),
    )


def wants_fragment(request: HtmxHttpRequest) -> bool:
    """htmx swaps in the table only; a history restore after a cache miss needs the page."""
    return bool(request.htmx) and not request.htmx.history_restore_request


def render_list(
    request: HtmxHttpRequest,
    *,
    template: str,
    fragment: str,
    form: forms.Form,
    queryset: QuerySet,
    extra: dict | None = None,
) -> HttpResponse:
    """Render a list page, or only its `fragment` for an htmx request, 50 rows a page."""
    page_obj = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    name = f"{template}#{fragment}" if wants_fragment(request) else template
    return render(request, name, {"form": form, "page_obj": page_obj, **(extra or {})})

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from marketing.common.htmx import HtmxHttpRequest
from marketing.common.listing import wants_fragment
from profiles.forms_events import EventFilterForm
from profiles.selectors_events import event_list_page


@require_GET
@vary_on_headers("HX-Request")
def event_list_view(request: HtmxHttpRequest) -> HttpResponse:
    """Events newest first, filtered by type, channel, campaign, item and window; pages by
    keyset ("Older"), no count (profiles/selectors_events.py)."""
    form = EventFilterForm(request.GET)
    valid = form.is_valid()
    filters = form.cleaned_data if valid else {}
    page = event_list_page(filters=filters, cursor=filters.get("before")) if valid else None
    template = "profiles/event_list.html"
    name = f"{template}#event-table" if wants_fragment(request) else template
    return render(request, name, {"form": form, "page": page}, status=200 if valid else 400)

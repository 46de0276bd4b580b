from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from marketing.common.htmx import HtmxHttpRequest
from marketing.common.listing import render_list
from profiles import selectors
from profiles.forms import CustomerFilterForm, SegmentFilterForm
from profiles.forms_privacy import EraseForm
from profiles.segments.selectors import segments_for_customer


@require_GET
@vary_on_headers("HX-Request")
def customer_list_view(request: HtmxHttpRequest) -> HttpResponse:
    form = CustomerFilterForm(request.GET)
    form.is_valid()
    return render_list(
        request,
        template="profiles/customer_list.html",
        fragment="customer-table",
        form=form,
        queryset=selectors.customer_list(filters=form.cleaned_data),
    )


@require_GET
def customer_detail_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    customer = selectors.customer_get(pk=pk)
    if customer is None:
        raise Http404("No such customer")
    events = selectors.event_list_for_customer(customer_id=customer.pk, limit=50)
    timeline = selectors.customer_timeline(customer=customer, events=events, limit=50)
    features = selectors.customer_features(customer=customer)
    return render(
        request,
        "profiles/customer_detail.html",
        {
            "customer": customer,
            "attributes": sorted(customer.attributes.items()),
            "segments": [s for s, member in segments_for_customer(customer=customer) if member],
            "events": events,
            "timeline": timeline,
            "timeline_posts": (posts := sum(1 for entry in timeline if entry.post is not None)),
            "timeline_events": len(timeline) - posts,
            "features": features,
            "affinity_max": max(features["category_affinity"].values(), default=0) or 1,
            "consent_rows": selectors.consent_rows(customer=customer),
            "consent_trail": selectors.consent_history(customer=customer),
            "erase_form": EraseForm(expected=customer.external_id),
        },
    )


@require_GET
@vary_on_headers("HX-Request")
def segment_list_view(request: HtmxHttpRequest) -> HttpResponse:
    form = SegmentFilterForm(request.GET)
    form.is_valid()
    return render_list(
        request,
        template="profiles/segment_list.html",
        fragment="segment-table",
        form=form,
        queryset=selectors.segment_list(filters=form.cleaned_data),
    )

from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from campaigns import selectors
from campaigns.forms import CampaignFilterForm
from marketing.common.htmx import HtmxHttpRequest

PAGE_SIZE = 50


@require_GET
@vary_on_headers("HX-Request")
def campaign_list_view(request: HtmxHttpRequest) -> HttpResponse:
    form = CampaignFilterForm(request.GET)
    form.is_valid()
    campaigns = selectors.campaign_list(filters=form.cleaned_data)
    page_obj = Paginator(campaigns, PAGE_SIZE).get_page(request.GET.get("page"))
    template = "campaigns/campaign_list.html"
    # A history restore after a cache miss also carries HX-Request but needs the whole page.
    if request.htmx and not request.htmx.history_restore_request:
        template += "#campaign-table"
    return render(request, template, {"form": form, "page_obj": page_obj})

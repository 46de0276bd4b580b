from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from campaigns import selectors
from campaigns.forms import CampaignFilterForm
from marketing.common.htmx import HtmxHttpRequest
from marketing.common.listing import PAGE_SIZE, wants_fragment

TEMPLATE = "campaigns/campaign_list.html"


@require_GET
@vary_on_headers("HX-Request")
def campaign_list_view(request: HtmxHttpRequest) -> HttpResponse:
    """Like `render_list`, with the figures (sent, opened, ...) of the page's campaigns
    added after paging."""
    form = CampaignFilterForm(request.GET)
    form.is_valid()
    queryset = selectors.campaign_list(filters=form.cleaned_data)
    page_obj = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    page_obj.object_list = selectors.campaigns_with_figures(page_obj.object_list)
    name = f"{TEMPLATE}#campaign-table" if wants_fragment(request) else TEMPLATE
    return render(request, name, {"form": form, "page_obj": page_obj})

from django.http import HttpResponse
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from campaigns import selectors
from campaigns.forms import CampaignFilterForm
from marketing.common.htmx import HtmxHttpRequest
from marketing.common.listing import render_list


@require_GET
@vary_on_headers("HX-Request")
def campaign_list_view(request: HtmxHttpRequest) -> HttpResponse:
    form = CampaignFilterForm(request.GET)
    form.is_valid()
    return render_list(
        request,
        template="campaigns/campaign_list.html",
        fragment="campaign-table",
        form=form,
        queryset=selectors.campaign_list(filters=form.cleaned_data),
    )

from django.http import HttpResponse
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from insights import selectors
from insights.forms import PostFilterForm
from marketing.common.htmx import HtmxHttpRequest
from marketing.common.listing import render_list


@require_GET
@vary_on_headers("HX-Request")
def post_list_view(request: HtmxHttpRequest) -> HttpResponse:
    form = PostFilterForm(
        request.GET, brands=selectors.brand_list(), sources=selectors.post_source_list()
    )
    form.is_valid()
    return render_list(
        request,
        template="insights/post_list.html",
        fragment="post-table",
        form=form,
        queryset=selectors.post_list(filters=form.cleaned_data),
    )

from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from insights import selectors
from insights.forms import PostFilterForm
from marketing.common.htmx import HtmxHttpRequest

PAGE_SIZE = 50


@require_GET
@vary_on_headers("HX-Request")
def post_list_view(request: HtmxHttpRequest) -> HttpResponse:
    form = PostFilterForm(
        request.GET, brands=selectors.brand_list(), sources=selectors.post_source_list()
    )
    form.is_valid()
    posts = selectors.post_list(filters=form.cleaned_data)
    page_obj = Paginator(posts, PAGE_SIZE).get_page(request.GET.get("page"))
    template = "insights/post_list.html"
    # A history restore after a cache miss also carries HX-Request but needs the whole page.
    if request.htmx and not request.htmx.history_restore_request:
        template += "#post-table"
    return render(request, template, {"form": form, "page_obj": page_obj})

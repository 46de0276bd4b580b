import json

from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from marketing.common.htmx import HtmxHttpRequest
from marketing.common.listing import PAGE_SIZE, render_list, wants_fragment
from recommender import selectors, selectors_models
from recommender.forms import ItemFilterForm, ModelVersionFilterForm
from recommender.forms_models import TrainForm
from recommender.models import Algorithm

TOP_ITEMS = 10


def _metric_text(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


@require_GET
@vary_on_headers("HX-Request")
def item_list_view(request: HtmxHttpRequest) -> HttpResponse:
    form = ItemFilterForm(request.GET, categories=selectors.item_category_list())
    form.is_valid()
    return render_list(
        request,
        template="recommender/item_list.html",
        fragment="item-table",
        form=form,
        queryset=selectors.item_list(filters=form.cleaned_data),
    )


@require_GET
@vary_on_headers("HX-Request")
def modelversion_list_view(request: HtmxHttpRequest) -> HttpResponse:
    form = ModelVersionFilterForm(request.GET)
    form.is_valid()
    versions = selectors.modelversion_list(filters=form.cleaned_data)
    page_obj = Paginator(versions, PAGE_SIZE).get_page(request.GET.get("page"))
    for version in page_obj.object_list:
        pairs = [(k, _metric_text(v)) for k, v in sorted(version.metrics.items())]
        version.metric_pairs = pairs  # type: ignore[attr-defined]
    context = {"form": form, "page_obj": page_obj}
    template = "recommender/modelversion_list.html"
    if wants_fragment(request):
        template += "#modelversion-table"
    else:
        context["top_items"] = selectors.modelversion_top_items(
            algorithm=Algorithm.POPULARITY, limit=TOP_ITEMS
        )
        context["chart_json"] = json.dumps(selectors_models.modelversion_metrics_chart())
        context["train_form"] = TrainForm()
        context["served"] = selectors_models.modelversion_served()
    return render(request, template, context)

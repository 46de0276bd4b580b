from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from experiments import selectors
from experiments.forms import ExperimentFilterForm
from marketing.common.htmx import HtmxHttpRequest

PAGE_SIZE = 50


@require_GET
@vary_on_headers("HX-Request")
def experiment_list_view(request: HtmxHttpRequest) -> HttpResponse:
    form = ExperimentFilterForm(request.GET)
    form.is_valid()
    experiments = selectors.experiment_list(filters=form.cleaned_data)
    page_obj = Paginator(experiments, PAGE_SIZE).get_page(request.GET.get("page"))
    template = "experiments/experiment_list.html"
    # A history restore after a cache miss also carries HX-Request but needs the whole page.
    if request.htmx and not request.htmx.history_restore_request:
        template += "#experiment-table"
    return render(request, template, {"form": form, "page_obj": page_obj})

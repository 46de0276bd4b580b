from django.http import HttpResponse
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from experiments import selectors
from experiments.forms import ExperimentFilterForm
from marketing.common.htmx import HtmxHttpRequest
from marketing.common.listing import render_list


@require_GET
@vary_on_headers("HX-Request")
def experiment_list_view(request: HtmxHttpRequest) -> HttpResponse:
    form = ExperimentFilterForm(request.GET)
    form.is_valid()
    return render_list(
        request,
        template="experiments/experiment_list.html",
        fragment="experiment-table",
        form=form,
        queryset=selectors.experiment_list(filters=form.cleaned_data),
    )

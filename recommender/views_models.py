"""Training, activation and rollback of model versions from the Recommendations page."""

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from marketing.common.errors import ApplicationError
from marketing.common.htmx import HtmxHttpRequest
from marketing.roles import require_edit
from recommender import services, serving_services
from recommender.forms_models import RollbackForm, TrainForm


@require_POST
def modelversion_train_view(request: HtmxHttpRequest) -> HttpResponse:
    require_edit(request)
    form = TrainForm(request.POST)
    job = None
    if form.is_valid():
        job = services.model_train_request(
            algorithm=form.cleaned_data["algorithm"], user=request.user
        )
    return render(
        request,
        "recommender/modelversion_list.html#train-panel",
        {"train_form": form, "training_job": job},
    )


@require_POST
def modelversion_activate_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    require_edit(request)
    try:
        version = serving_services.modelversion_activate(version=pk)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{version} is now served.")
    return HttpResponseClientRedirect(reverse("recommender:modelversion-list"))


@require_POST
def modelversion_rollback_view(request: HtmxHttpRequest) -> HttpResponse:
    require_edit(request)
    form = RollbackForm(request.POST)
    if form.is_valid():
        try:
            version = serving_services.modelversion_rollback(
                algorithm=form.cleaned_data["algorithm"]
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Rolled back: {version} is served again.")
    return HttpResponseClientRedirect(reverse("recommender:modelversion-list"))

"""The experiments API: product teams define, start and stop experiments from their own
automation, and storefronts ask which variant a customer gets (the hot path)."""

import json
import time

from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from experiments import selectors
from experiments.errors import ExperimentNotFoundError
from experiments.models import ExperimentStatus
from experiments.results import experiment_results
from experiments.serializers import (
    AssignInputSerializer,
    AssignOutputSerializer,
    ExperimentCreateInputSerializer,
    ExperimentOutputSerializer,
    ExperimentResultsOutputSerializer,
)
from experiments.services import (
    MetricSpec,
    VariantSpec,
    experiment_create,
    experiment_start,
    experiment_stop,
)
from experiments.serving import experiment_assign_variant
from marketing.authentication import HasScope
from marketing.hot_paths import DECLINED, hot_call_key, hot_json_response
from marketing.throttling import (
    REFUSED_KEY,
    OverLimitError,
    api_key_quota_or_none,
)

ERROR = OpenApiResponse(description='Error body: {"code", "message", "extra"}')
INVALID = OpenApiResponse(
    description='Invalid definition: code "invalid", `extra.fields` maps each field (e.g. '
    '"variants", "metric") to its messages.'
)
STATUS_CONFLICT = OpenApiResponse(
    description='code "experiment_status_conflict": a stopped experiment cannot start again, '
    "a draft cannot stop."
)


@extend_schema(tags=["experiments"])
class ExperimentViewSet(viewsets.GenericViewSet):
    """Experiments by key. Keys need `experiments:read` to read, `experiments:write` to
    create, start and stop, and `experiments:assign` to assign customers."""

    permission_classes = [HasScope]
    required_scopes = {
        "list": "experiments:read",
        "retrieve": "experiments:read",
        "results": "experiments:read",
        "create": "experiments:write",
        "start": "experiments:write",
        "stop": "experiments:write",
        "assign": "experiments:assign",
    }
    serializer_class = ExperimentOutputSerializer
    lookup_url_kwarg = "key"
    lookup_value_regex = "[-a-zA-Z0-9_]+"

    def get_queryset(self):
        status_filter = self.request.query_params.get("status") or ""
        if status_filter and status_filter not in ExperimentStatus.values:
            raise serializers.ValidationError(
                {"status": [f"One of {', '.join(ExperimentStatus.values)}."]}
            )
        return selectors.experiment_list(filters={"status": status_filter})

    def get_object(self):
        experiment = selectors.experiment_get(key=self.kwargs["key"])
        if experiment is None:
            raise Http404("No such experiment")
        return experiment

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=ExperimentStatus.values, required=False),
        ],
        responses={200: ExperimentOutputSerializer(many=True), 400: INVALID},
    )
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ExperimentOutputSerializer(page, many=True).data)

    @extend_schema(
        request=ExperimentCreateInputSerializer,
        responses={201: ExperimentOutputSerializer, 400: INVALID},
        description="Create a draft experiment; start it with POST .../start. Without a "
        "variant marked `is_control`, the first one is the control.",
    )
    def create(self, request):
        data = ExperimentCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        params = values.pop("allocation_params", None) or {}
        experiment = experiment_create(
            **{k: v for k, v in values.items() if k not in ("variants", "metric", "guardrails")},
            variants=[VariantSpec(**v) for v in values["variants"]],
            metric=MetricSpec(**values["metric"]),
            guardrails=[MetricSpec(**g) for g in values["guardrails"]],
            bandit_burn_in=params.get("burn_in", 100),
            bandit_min_share=params.get("min_share", 0.01),
            bandit_epsilon=params.get("epsilon", 0.1),
        )
        return Response(ExperimentOutputSerializer(experiment).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: ExperimentOutputSerializer, 404: ERROR})
    def retrieve(self, request, key=None):
        return Response(ExperimentOutputSerializer(self.get_object()).data)

    @extend_schema(
        request=None,
        responses={200: ExperimentOutputSerializer, 404: ERROR, 409: STATUS_CONFLICT},
        description="Start assigning customers (a running experiment: no change).",
    )
    @action(detail=True, methods=["post"])
    def start(self, request, key=None):
        return Response(
            ExperimentOutputSerializer(experiment_start(experiment=self.get_object())).data
        )

    @extend_schema(
        request=None,
        responses={200: ExperimentOutputSerializer, 404: ERROR, 409: STATUS_CONFLICT},
        description="Stop assigning customers (a stopped experiment: no change).",
    )
    @action(detail=True, methods=["post"])
    def stop(self, request, key=None):
        return Response(
            ExperimentOutputSerializer(experiment_stop(experiment=self.get_object())).data
        )

    @extend_schema(
        responses={200: ExperimentResultsOutputSerializer, 404: ERROR},
        description="Every statistic of the primary metric and the guardrails, per variant "
        "against control, with the plain-language decision (cached for a minute).",
    )
    @action(detail=True, methods=["get"])
    def results(self, request, key=None):
        # Built by experiments.results in the serializer's shape (documented, not re-validated).
        return Response(experiment_results(experiment=self.get_object()))

    @extend_schema(
        request=AssignInputSerializer,
        responses={
            200: AssignOutputSerializer,
            400: INVALID,
            404: ERROR,
            415: OpenApiResponse(description="The body is not JSON (or a form)."),
        },
        description="The customer's variant: deterministic and sticky, the same on every "
        "server. The first assignment of a customer is logged as their exposure (in the "
        "background; an unknown customer id gets an anonymous profile, as with events). "
        "Not in the experiment (`variant` null, `reason` says why): global control group, "
        "outside the traffic share or the audience, held out, or the experiment not running.",
    )
    @action(detail=True, methods=["post"])
    def assign(self, request, key=None):
        data = AssignInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        answer = experiment_assign_variant(key=key, customer_id=data.validated_data["customer_id"])
        body = {
            "experiment": answer.experiment,
            "variant": answer.variant,
            "in_experiment": answer.in_experiment,
        }
        if answer.reason:
            body["reason"] = answer.reason
        # The output serializer's shape (the schema says so), built directly on the hot path.
        return Response(body)


ASSIGN_SCOPE = ExperimentViewSet.required_scopes["assign"]
_assign_drf_view = ExperimentViewSet.as_view({"post": "assign"})


@csrf_exempt
def experiment_assign_view(request: HttpRequest, key: str) -> HttpResponse:
    """POST /api/v1/experiments/{key}/assign without DRF's request cycle (routed before the
    router, see marketing/urls.py): a storefront key with the scope, a JSON body with a valid
    `customer_id`, a known experiment, answered in one Redis round trip that also counts the
    call against the key's rate limit (ApiKeyRateThrottle's counter). The same answer, status
    and headers as the `assign` action, which serves everything else (other methods, no key
    or a bad one, a missing scope, invalid input, an unknown experiment, the limit reached,
    the browsable API): the action and its schema stay the contract."""
    if request.META.get(DECLINED):  # marketing.hot_paths tried it already
        return _assign_drf_view(request, key=key)
    return _assign_fast(request, key) or _assign_drf_view(request, key=key)


def _assign_fast(request: HttpRequest, key: str) -> HttpResponse | None:
    api_key = hot_call_key(request, scope=ASSIGN_SCOPE)
    if api_key is None:
        return None
    customer_id = _customer_id(request.body)
    if customer_id is None:
        return None
    try:
        answer = experiment_assign_variant(
            key=key,
            customer_id=customer_id,
            quota=api_key_quota_or_none(api_key, now=time.time()),
        )
    except ExperimentNotFoundError:
        return None
    except OverLimitError as exc:
        request.META[REFUSED_KEY] = exc.wait_seconds
        return None
    body = {
        "experiment": answer.experiment,
        "variant": answer.variant,
        "in_experiment": answer.in_experiment,
    }
    if answer.reason:
        body["reason"] = answer.reason
    return hot_json_response(body, allow="POST, OPTIONS")


def _customer_id(body: bytes) -> str | None:
    """AssignInputSerializer's `customer_id` when the body is valid for it (a JSON object,
    a string that is not blank once trimmed, at most 128 characters, no NUL); None otherwise
    (DRF then parses and answers the same way it always did). A body with any \\u escape
    is left to DRF too: its parser refuses NULs and unpaired surrogates anywhere in it."""
    if b"\\u" in body:
        return None
    try:
        data = json.loads(body.decode(), parse_constant=_reject)
    except ValueError:
        return None
    value = data.get("customer_id") if isinstance(data, dict) else None
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or len(value) > 128 or "\x00" in value:
        return None
    return value


def _reject(constant: str):
    raise ValueError(f"{constant} is not valid JSON")

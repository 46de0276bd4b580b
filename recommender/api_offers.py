"""The offer ranker's API: Rank and Reward (issue #8), thin over offers_serving / offers_log."""

import re
import time
from collections.abc import Mapping
from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from experiments.errors import ExperimentNotFoundError
from experiments.serving import experiment_assign_variant, experiment_variant_config
from marketing.authentication import HasScope
from marketing.hot_paths import DECLINED, hot_call_key, hot_json_response
from marketing.throttling import (
    REFUSED_KEY,
    OverLimitError,
    Quota,
    api_key_quota_or_none,
)
from recommender import offers_log
from recommender.errors import DecisionNotFoundError, RewardWindowClosedError
from recommender.offers_serving import (
    DEFAULT_K,
    DEFAULT_VARIANT,
    MAX_CANDIDATES,
    MAX_K,
    RankVariant,
    offers_rank,
)
from recommender.serializers_offers import (
    CandidateField,
    OfferRankInputSerializer,
    OfferRankOutputSerializer,
    OfferRewardInputSerializer,
    OfferRewardOutputSerializer,
    _features,
)


@extend_schema(tags=["offers"])
class OfferRankView(APIView):
    permission_classes = [HasScope]
    required_scopes = {"POST": "offers:read"}

    @extend_schema(
        operation_id="offers_rank",
        summary="Rank offers (or items, or inline actions) for a customer in a context.",
        description="Without `candidates`, the eligible offers for the placement (status, "
        "dates, placement, channel from `context.channel`, segment, linked items in stock, "
        "caps). Features: the context, the customer's live profile (order and revenue "
        "buckets, recency, top categories and shares, segment ids; none without "
        "personalization consent) and each candidate's attributes, crossed. The first "
        "candidate is explored (configurable share, 20% by default); report its outcome to "
        "`/offers/reward` with the `event_id`. No candidate eligible: an empty ranking and a "
        "null `event_id`. With `experiment`, the customer's variant decides the ranking "
        "policy and exploration (see `experiment`); a customer outside the experiment "
        "(holdout, traffic, global control, stopped) gets the default ranking, a null "
        "`variant` and the `reason`. The decision log records both keys.",
        request=OfferRankInputSerializer,
        responses={
            200: OfferRankOutputSerializer,
            400: OpenApiResponse(description="Invalid input; `extra.fields` names the fields."),
            403: OpenApiResponse(description="The key lacks the scope offers:read."),
            404: OpenApiResponse(description='code "experiment_not_found": unknown `experiment`.'),
        },
    )
    def post(self, request):
        serializer = OfferRankInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(_rank_answer(serializer.validated_data))


def _rank_answer(data: Mapping[str, Any], *, quota: Quota | None = None) -> dict:
    """The Rank answer for validated input (OfferRankInputSerializer's shape)."""
    variant, tested = DEFAULT_VARIANT, {}
    if key := data.get("experiment"):
        answer = experiment_assign_variant(key=key, customer_id=data["customer_id"])
        tested = {"experiment": key, "variant": answer.variant}
        if answer.variant is None:
            tested["reason"] = answer.reason
            variant = RankVariant(experiment=key)
        else:
            config = experiment_variant_config(key=key, variant=answer.variant)
            variant = RankVariant.from_config(config, experiment=key, variant=answer.variant)
    result = offers_rank(
        customer_external_id=data["customer_id"],
        context=data["context"],
        candidates=data.get("candidates"),
        placement=data["placement"],
        k=data["k"],
        variant=variant,
        quota=quota,
    )
    return {
        "event_id": result.event_id,
        "ranking": [{"id": i, "probability": p} for i, p in result.ranking],
        "model_version": result.model_version,
        **tested,
    }


RANK_SCOPE = OfferRankView.required_scopes["POST"]
_rank_drf_view = OfferRankView.as_view()
_PLACEMENT = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_SLUG = re.compile(r"[-a-zA-Z0-9_]{1,64}")
_CANDIDATE = CandidateField()
# orjson reads an integer beyond 64 bits as a float, json as an int: such bodies go to DRF.
_LONG_NUMBER = re.compile(rb"[0-9]{19}")


@csrf_exempt
def offer_rank_view(request: HttpRequest) -> HttpResponse:
    """POST /api/v1/offers/rank without DRF's request cycle (routed before the router, see
    marketing/urls.py), as the experiment assignment's hot path: a storefront key with the
    scope and a JSON body that OfferRankInputSerializer accepts as it is (checked here by the
    same rules, with the serializer's own candidate field) are ranked, and the call is
    counted against the key's rate limit in the decision's own Redis round trip. The same
    answer, status and headers as OfferRankView, which serves everything else (other
    methods, no key or a bad one, a missing scope, any input the check here is not sure of,
    an unknown experiment, the limit reached, the browsable API), so its serializer and
    schema stay the contract. DRF's serializer set-up alone cost about as much as the
    ranking (its fields are deep-copied per call)."""
    if request.META.get(DECLINED):  # marketing.hot_paths tried it already
        return _rank_drf_view(request)
    return _rank_fast(request) or _rank_drf_view(request)


def _rank_fast(request: HttpRequest) -> HttpResponse | None:
    api_key = hot_call_key(request, scope=RANK_SCOPE)
    if api_key is None:
        return None
    data = rank_input(request.body)
    if data is None:
        return None
    try:
        answer = _rank_answer(data, quota=api_key_quota_or_none(api_key, now=time.time()))
    except ExperimentNotFoundError:
        return None  # not counted: the decision was not written
    except OverLimitError as exc:
        request.META[REFUSED_KEY] = exc.wait_seconds
        return None
    return hot_json_response(answer, allow="POST, OPTIONS")


def rank_input(body: bytes) -> dict | None:
    """OfferRankInputSerializer's validated data when the body is valid for it as sent (no
    value that the serializer would coerce or trim); None otherwise, and DRF then parses,
    validates and answers as it always did. A body with any \\u escape is left to DRF too
    (its parser refuses NULs and unpaired surrogates anywhere in it), and so is one with a
    number of 19 digits or more."""
    if b"\\u" in body or _LONG_NUMBER.search(body):
        return None
    try:  # orjson refuses NaN and Infinity, as DRF's parser does
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(data) is not dict:
        return None
    customer = data.get("customer_id")
    if type(customer) is not str or not customer or len(customer) > 128:
        return None
    if customer != customer.strip() or "\x00" in customer:
        return None
    out: dict[str, Any] = {"customer_id": customer}
    context = data.get("context", {})
    try:
        out["context"] = _features(context, label="context")
    except serializers.ValidationError:
        return None
    placement = data.get("placement", "")
    if type(placement) is not str or (placement and not _PLACEMENT.fullmatch(placement)):
        return None
    if "placement" in data and not placement:  # given blank: the serializer refuses it
        return None
    out["placement"] = placement
    k = data.get("k", DEFAULT_K)
    if type(k) is not int or not 1 <= k <= MAX_K:
        return None
    out["k"] = k
    if "candidates" in data:
        candidates = data["candidates"]
        if type(candidates) is not list or len(candidates) > MAX_CANDIDATES:
            return None
        try:
            out["candidates"] = [_CANDIDATE.to_internal_value(c) for c in candidates]
        except serializers.ValidationError:
            return None
    if "experiment" in data:
        experiment = data["experiment"]
        if type(experiment) is not str or not _SLUG.fullmatch(experiment):
            return None
        out["experiment"] = experiment
    return out


@extend_schema(tags=["offers"])
class OfferRewardView(APIView):
    permission_classes = [HasScope]
    required_scopes = {"POST": "offers:write"}

    @extend_schema(
        operation_id="offers_reward",
        summary="Report the reward (0..1) of a ranking's first candidate.",
        description="Idempotent: the first reward recorded for an event is kept, a repeat "
        "answers `duplicate`. Accepted before the decision reaches the database. Without a "
        "reward within the wait (OFFERS_REWARD_WAIT_SECONDS, 10 minutes by default) the "
        "event gets the default reward (0); a later reward answers 409. Clicks "
        "(`offer_click` with `properties.event_id` or the offer id) and purchases of the "
        "offered item sent to `/events` count as reward 1 as well.",
        request=OfferRewardInputSerializer,
        responses={
            200: OfferRewardOutputSerializer,
            400: OpenApiResponse(description="Invalid input; `extra.fields` names the fields."),
            403: OpenApiResponse(description="The key lacks the scope offers:write."),
            404: OpenApiResponse(description="No ranking has this event id."),
            409: OpenApiResponse(description="The wait is over; the default reward was given."),
        },
    )
    def post(self, request):
        serializer = OfferRewardInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        status = offers_log.reward_record(event_id=data["event_id"], reward=data["reward"])
        if status == offers_log.UNKNOWN:
            raise DecisionNotFoundError("No ranking has this event id.")
        if status == offers_log.CLOSED:
            raise RewardWindowClosedError("The reward wait is over for this event.")
        return Response({"event_id": str(data["event_id"]), "status": status})

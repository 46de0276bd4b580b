"""The offer ranker's API: Rank and Reward (issue #8), thin over offers_serving / offers_log."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from experiments.serving import experiment_assign_variant, experiment_variant_config
from marketing.authentication import HasScope
from marketing.throttling import CounterRateThrottle
from recommender import offers_log
from recommender.errors import DecisionNotFoundError, RewardWindowClosedError
from recommender.offers_serving import DEFAULT_VARIANT, RankVariant, offers_rank
from recommender.serializers_offers import (
    OfferRankInputSerializer,
    OfferRankOutputSerializer,
    OfferRewardInputSerializer,
    OfferRewardOutputSerializer,
)


@extend_schema(tags=["offers"])
class OfferRankView(APIView):
    permission_classes = [HasScope]
    # one INCR per call (DRF's list of request times costs milliseconds at 200 calls/s)
    throttle_classes = [CounterRateThrottle]
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
        data = serializer.validated_data
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
        )
        return Response(
            {
                "event_id": result.event_id,
                "ranking": [{"id": i, "probability": p} for i, p in result.ranking],
                "model_version": result.model_version,
                **tested,
            }
        )


@extend_schema(tags=["offers"])
class OfferRewardView(APIView):
    permission_classes = [HasScope]
    # one INCR per call (DRF's list of request times costs milliseconds at 200 calls/s)
    throttle_classes = [CounterRateThrottle]
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

import logging

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from experiments.serving import experiment_assign_variant, experiment_variant_config
from marketing.authentication import HasScope
from marketing.rollups import rollup_recommendations_served
from recommender import selectors, serving
from recommender.serializers import (
    STRATEGIES,
    ItemFilterSerializer,
    ItemOutputSerializer,
    RecommendationOutputSerializer,
    RecommendationQuerySerializer,
    SimilarItemsOutputSerializer,
    SimilarQuerySerializer,
)

logger = logging.getLogger(__name__)


NOT_FOUND = OpenApiResponse(description='No such item. Error body: {"code", "message", "extra"}')
ERRORS = {
    400: OpenApiResponse(description="Invalid parameters; `extra.fields` names them."),
    403: OpenApiResponse(description="The key lacks the scope recommendations:read."),
}


@extend_schema(tags=["catalog"])
class ItemViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The catalog as storefronts see it; `id` is the storefront's item id."""

    serializer_class = ItemOutputSerializer
    permission_classes = [HasScope]
    required_scopes = {"list": "recommendations:read", "retrieve": "recommendations:read"}
    lookup_field = "external_id"
    lookup_url_kwarg = "id"
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        filters = ItemFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return selectors.item_list(filters=filters.validated_data)

    @extend_schema(
        parameters=[ItemFilterSerializer],
        responses={200: ItemOutputSerializer(many=True), 400: ERRORS[400]},
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(responses={200: ItemOutputSerializer, 404: NOT_FOUND})
    def retrieve(self, request, *args, **kwargs):
        return super().retrieve(request, *args, **kwargs)


ATTRIBUTE_PARAMETER = OpenApiParameter(
    "attr.<name>",
    OpenApiTypes.STR,
    description="Filter on a catalog attribute, e.g. `attr.color=red`; repeat for several "
    "attributes. A list-valued attribute matches when any of its values does.",
    required=False,
)


def _filters(data: dict) -> serving.ItemFilters:
    return serving.ItemFilters(
        category=data.get("category"),
        brand=data.get("brand"),
        in_stock=data.get("in_stock"),
        price_min=data.get("price_min"),
        price_max=data.get("price_max"),
        attributes=data["attributes"],
    )


def _items(result: serving.Recommendation) -> list[dict]:
    """Rows shaped like RecommendedItemOutputSerializer."""
    rows = []
    for item_id, score, source in result.items:
        entry = result.catalog[item_id]
        rows.append(
            {
                "id": item_id,
                "title": entry.title,
                "score": score,
                "image_url": entry.image_url,
                "deep_link": entry.deep_link,
                "price": None if entry.price is None else str(entry.price),
                "category": entry.category,
                "source": source,
            }
        )
    return rows


def _count_served(result: serving.Recommendation) -> None:
    """Impressions, coverage and diversity of the live dashboard (marketing/rollups.py)."""
    rollup_recommendations_served(
        items=[(item_id, result.catalog[item_id].category) for item_id, _, _ in result.items]
    )


def _version(result: serving.Recommendation) -> dict | None:
    if result.model_version_id is None:
        return None
    return {"id": result.model_version_id, "algorithm": result.model_version_algorithm}


@extend_schema(tags=["recommendations"])
class CustomerRecommendationView(APIView):
    """Recommendations for one customer (by storefront id or alias)."""

    permission_classes = [HasScope]
    required_scopes = {"GET": "recommendations:read"}

    @extend_schema(
        operation_id="customer_recommendations",
        summary="Recommended items for a customer, with scores and the model version.",
        description="Personalized when the customer has given personalization consent and "
        "the serving model has a list for them; otherwise the popular list. With "
        "`experiment`, the variant's `strategy` (default, because_you_viewed, popular) is "
        "used. Only active "
        "items; `exclude` drops items the customer bought or recently viewed; the list is "
        "topped up to `k` with popular items under the same filters.",
        parameters=[RecommendationQuerySerializer, ATTRIBUTE_PARAMETER],
        responses={
            200: RecommendationOutputSerializer,
            404: OpenApiResponse(description='code "experiment_not_found": unknown `experiment`.'),
            **ERRORS,
        },
    )
    def get(self, request, id: str):
        query = RecommendationQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        strategy, tested = data["strategy"], {}
        if key := data.get("experiment"):
            answer = experiment_assign_variant(key=key, customer_id=id)
            tested = {"experiment": key, "variant": answer.variant}
            if answer.variant is not None:
                config = experiment_variant_config(key=key, variant=answer.variant)
                if config.get("strategy") in STRATEGIES:
                    strategy = config["strategy"]
        result = serving.recommend(
            customer_external_id=id,
            k=data["k"],
            filters=_filters(data),
            exclude=data["exclude"],
            strategy=strategy,
            context=data["context"],
        )
        _count_served(result)
        body = {
            "customer_id": id,
            "model_version": _version(result),
            "strategy": result.strategy_used,
            "personalized": result.personalized,
            "context": data["context"],
            **tested,
            "items": _items(result),
        }
        # The body has the output serializer's shape (the schema says so); building it
        # directly saves a millisecond per call on the hot path.
        return Response(body)


@extend_schema(tags=["recommendations"])
class SimilarItemsView(APIView):
    """Items related to one catalog item."""

    permission_classes = [HasScope]
    required_scopes = {"GET": "recommendations:read"}

    @extend_schema(
        operation_id="item_similar",
        summary="Items related to an item (item-item or content model, else popular in its "
        "category).",
        parameters=[SimilarQuerySerializer, ATTRIBUTE_PARAMETER],
        responses={
            200: SimilarItemsOutputSerializer,
            404: OpenApiResponse(description="No such item."),
            **ERRORS,
        },
    )
    def get(self, request, id: str):
        query = SimilarQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        result = serving.similar(item_external_id=id, k=data["k"], filters=_filters(data))
        _count_served(result)
        body = {
            "item_id": id,
            "model_version": _version(result),
            "strategy": result.strategy_used,
            "items": _items(result),
        }
        return Response(body)

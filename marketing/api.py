"""The one API router: every path under /api/v1/, plus the OpenAPI schema and Swagger UI."""

from django.urls import include, path, re_path
from drf_spectacular.utils import extend_schema, inline_serializer
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework import serializers
from rest_framework.decorators import api_view, permission_classes
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from campaigns.api_inbox import CustomerMessageViewSet
from experiments.api import ExperimentViewSet
from insights.api import SocialPostIngestView
from marketing.authentication import HasScope
from marketing.models import ApiKey
from profiles.api import CustomerViewSet, EventIngestView
from profiles.api_segment_imports import SegmentImportReplaceView, SegmentImportView
from profiles.api_segments import SegmentViewSet
from recommender.api import CustomerRecommendationView, ItemViewSet, SimilarItemsView
from recommender.api_affinity import AffinitySegmentCreateView
from recommender.api_offers import OfferRankView, OfferRewardView


class OptionalSlashRouter(SimpleRouter):
    """Storefronts may call `/api/v1/items` or `/api/v1/items/`: no redirect for either."""

    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("items", ItemViewSet, basename="item")
router.register(
    r"customers/(?P<id>[^/]+)/messages", CustomerMessageViewSet, basename="customer-message"
)
router.register("customers", CustomerViewSet, basename="customer")
router.register("segments", SegmentViewSet, basename="segment")
router.register("experiments", ExperimentViewSet, basename="experiment")


@extend_schema(
    operation_id="whoami",
    summary="Who is calling: the API key's name and scopes, or the logged-in user.",
    responses={
        200: inline_serializer(
            "WhoAmI",
            {
                "kind": serializers.ChoiceField(choices=["api_key", "user"]),
                "name": serializers.CharField(),
                "scopes": serializers.ListField(child=serializers.CharField()),
                "rate_limit": serializers.CharField(),
            },
        )
    },
)
@api_view(["GET"])
@permission_classes([HasScope])
def whoami_view(request):
    from django.conf import settings

    if isinstance(request.auth, ApiKey):
        key = request.auth
        return Response(
            {
                "kind": "api_key",
                "name": key.name,
                "scopes": key.scopes,
                "rate_limit": key.rate_limit or settings.API_DEFAULT_RATE,
            }
        )
    return Response(
        {
            "kind": "user",
            "name": request.user.get_username(),
            "scopes": [],
            "rate_limit": settings.API_DEFAULT_RATE,
        }
    )


api_v1 = [
    path("me", whoami_view, name="whoami"),
    re_path(r"^events/?$", EventIngestView.as_view(), name="events"),
    re_path(r"^social/posts/?$", SocialPostIngestView.as_view(), name="social-posts"),
    re_path(r"^segments/import/?$", SegmentImportView.as_view(), name="segment-import"),
    re_path(
        r"^segments/(?P<id>[0-9]+)/import/?$",
        SegmentImportReplaceView.as_view(),
        name="segment-import-replace",
    ),
    re_path(r"^segments/affinity/?$", AffinitySegmentCreateView.as_view(), name="segment-affinity"),
    # Before the router: its customers/{id} and items/{id} routes would not match these, but
    # keeping them first makes the order explicit.
    re_path(
        r"^customers/(?P<id>[^/]+)/recommendations/?$",
        CustomerRecommendationView.as_view(),
        name="customer-recommendations",
    ),
    re_path(r"^items/(?P<id>[^/]+)/similar/?$", SimilarItemsView.as_view(), name="item-similar"),
    re_path(r"^offers/rank/?$", OfferRankView.as_view(), name="offers-rank"),
    re_path(r"^offers/reward/?$", OfferRewardView.as_view(), name="offers-reward"),
    *router.urls,
]

urlpatterns = [
    path("api/v1/", include((api_v1, "api"), namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
]

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets

from marketing.authentication import HasScope
from recommender import selectors
from recommender.serializers import ItemFilterSerializer, ItemOutputSerializer


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
        parameters=[ItemFilterSerializer], responses={200: ItemOutputSerializer(many=True)}
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

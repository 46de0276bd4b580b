from rest_framework import serializers

from recommender.models import Item


class ItemOutputSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="external_id")

    class Meta:
        model = Item
        fields = [
            "id",
            "title",
            "category",
            "brand",
            "price",
            "in_stock",
            "image_url",
            "deep_link",
            "attributes",
        ]


class ItemFilterSerializer(serializers.Serializer):
    q = serializers.CharField(required=False, max_length=200)
    category = serializers.CharField(required=False, max_length=100)
    in_stock = serializers.BooleanField(required=False, allow_null=True, default=None)

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


ATTRIBUTE_PREFIX = "attr."


class _ServingQuerySerializer(serializers.Serializer):
    """Query parameters shared by the serving endpoints; `attr.<name>=value` filters on
    Item.attributes (a list-valued attribute matches when any value does)."""

    k = serializers.IntegerField(min_value=1, max_value=100, default=10)
    category = serializers.CharField(required=False, max_length=100)
    brand = serializers.CharField(required=False, max_length=100)
    in_stock = serializers.BooleanField(required=False, allow_null=True, default=None)
    price_min = serializers.DecimalField(
        required=False, max_digits=12, decimal_places=2, min_value=0
    )
    price_max = serializers.DecimalField(
        required=False, max_digits=12, decimal_places=2, min_value=0
    )

    def validate(self, attrs):
        if (
            attrs.get("price_min") is not None
            and attrs.get("price_max") is not None
            and attrs["price_min"] > attrs["price_max"]
        ):
            raise serializers.ValidationError({"price_max": ["Must be at least price_min."]})
        attributes: dict[str, str] = {}
        errors: dict[str, list[str]] = {}
        for key, value in self.initial_data.items():
            if not key.startswith(ATTRIBUTE_PREFIX):
                continue
            name = key[len(ATTRIBUTE_PREFIX) :]
            if not name or len(name) > 100:
                errors[key] = ["Attribute names are 1 to 100 characters."]
            elif len(value) > 200:
                errors[key] = ["At most 200 characters."]
            else:
                attributes[name] = value
        if errors:
            raise serializers.ValidationError(errors)
        attrs["attributes"] = attributes
        return attrs


# The strategies a request (or an experiment variant's {"strategy": ...}) may choose.
STRATEGIES = ("default", "because_you_viewed", "popular")


class RecommendationQuerySerializer(_ServingQuerySerializer):
    exclude = serializers.CharField(
        required=False,
        allow_blank=True,
        default="purchased",
        help_text="Comma list of purchased, viewed (blank: exclude nothing).",
    )
    strategy = serializers.ChoiceField(choices=STRATEGIES, default="default")
    context = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")  # type: ignore[assignment]
    experiment = serializers.SlugField(
        required=False,
        max_length=64,
        help_text="An experiment key: the customer is assigned (sticky, exposure logged) and "
        'the variant\'s config applies, e.g. {"strategy": "popular"}; the response reports '
        "`experiment` and `variant`.",
    )

    def validate_exclude(self, value: str) -> list[str]:
        parts = [p.strip() for p in value.split(",") if p.strip()]
        unknown = sorted(set(parts) - {"purchased", "viewed"})
        if unknown:
            raise serializers.ValidationError(
                f"Unknown exclusion {', '.join(unknown)}; use purchased, viewed."
            )
        return parts


class SimilarQuerySerializer(_ServingQuerySerializer):
    pass


class ModelVersionRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    algorithm = serializers.CharField()


class RecommendedItemOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    title = serializers.CharField()
    score = serializers.FloatField()
    image_url = serializers.CharField()
    deep_link = serializers.CharField()
    price = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    category = serializers.CharField()
    # A plain string in the schema: an enum named "source" would rename the consent SourceEnum.
    source = serializers.CharField(  # type: ignore[assignment]
        help_text="Where the item came from: personalized, because_you_viewed, similar, "
        "popular or newest (the fill-up sources)."
    )


class RecommendationOutputSerializer(serializers.Serializer):
    customer_id = serializers.CharField()
    model_version = ModelVersionRefSerializer(allow_null=True)
    strategy = serializers.ChoiceField(
        choices=["personalized", "because_you_viewed", "popular", "newest"]
    )
    personalized = serializers.BooleanField()
    context = serializers.CharField()  # type: ignore[assignment]
    experiment = serializers.CharField(
        required=False, help_text="The experiment key asked for (only with `experiment`)."
    )
    variant = serializers.CharField(
        required=False,
        allow_null=True,
        help_text="The variant served; null when the customer is not in the experiment.",
    )
    items = RecommendedItemOutputSerializer(many=True)


class SimilarItemsOutputSerializer(serializers.Serializer):
    item_id = serializers.CharField()
    model_version = ModelVersionRefSerializer(allow_null=True)
    strategy = serializers.ChoiceField(choices=["similar", "popular"])
    items = RecommendedItemOutputSerializer(many=True)

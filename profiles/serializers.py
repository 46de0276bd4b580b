"""Serializers for the schema and for the slower, smaller endpoints.

The event batch endpoint validates with profiles/ingest.py (speed); EventInputSerializer
documents the same shape in the OpenAPI schema.
"""

from rest_framework import serializers

from profiles.ingest import EVENT_CHANNELS, EVENT_TYPES, MAX_ID_LENGTH
from profiles.models import ChannelEndpoint, ConsentPurpose, ConsentSource, Customer


class EventInputSerializer(serializers.Serializer):
    event_id = serializers.UUIDField(help_text="Idempotency key: an event is stored once.")
    customer_id = serializers.CharField(max_length=MAX_ID_LENGTH)
    type = serializers.ChoiceField(choices=sorted(EVENT_TYPES))
    item_id = serializers.CharField(max_length=MAX_ID_LENGTH, required=False)
    value = serializers.FloatField(required=False, help_text="E.g. revenue of a purchase.")
    channel = serializers.ChoiceField(choices=sorted(EVENT_CHANNELS), required=False)
    campaign_id = serializers.IntegerField(min_value=1, required=False)
    timestamp = serializers.DateTimeField(required=False, help_text="ISO 8601; default now.")
    properties = serializers.DictField(required=False, help_text="Free JSON, at most 8 KiB.")


class EventIngestOutputSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()


class EndpointOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = ChannelEndpoint
        fields = ["channel", "address", "opted_out"]


class CustomerOutputSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="external_id")
    endpoints = EndpointOutputSerializer(many=True)
    aliases = serializers.SlugRelatedField(many=True, read_only=True, slug_field="alias")
    features = serializers.SerializerMethodField()

    class Meta:
        model = Customer
        fields = [
            "id",
            "is_anonymous",
            "email",
            "phone",
            "first_name",
            "last_name",
            "country",
            "timezone",
            "language",
            "birth_date",
            "gender",
            "attributes",
            "endpoints",
            "aliases",
            "features",
            "created_at",
        ]

    def get_features(self, customer) -> dict:
        return self.context["features"]


class AliasInputSerializer(serializers.Serializer):
    alias = serializers.CharField(max_length=MAX_ID_LENGTH)


class ConsentOutputSerializer(serializers.Serializer):
    purpose = serializers.CharField()
    granted = serializers.BooleanField()
    source = serializers.CharField()
    changed_at = serializers.DateTimeField()


class ConsentInputSerializer(serializers.Serializer):
    purpose = serializers.ChoiceField(choices=ConsentPurpose.choices)
    granted = serializers.BooleanField()
    source = serializers.ChoiceField(
        choices=[ConsentSource.API, ConsentSource.WEBHOOK], default=ConsentSource.API
    )
    note = serializers.CharField(max_length=500, required=False, default="")


class ErasureOutputSerializer(serializers.Serializer):
    pseudonym = serializers.CharField()
    removed = serializers.DictField(child=serializers.IntegerField())
    erased_at = serializers.DateTimeField()

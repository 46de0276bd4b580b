"""Serializers for the schema and for the slower, smaller endpoints.

The event batch endpoint validates with profiles/ingest.py (speed); EventInputSerializer
documents the same shape in the OpenAPI schema.
"""

import zoneinfo

from rest_framework import serializers

from profiles.ingest import MAX_ID_LENGTH
from profiles.models import (
    Channel,
    ChannelEndpoint,
    ConsentPurpose,
    ConsentSource,
    Customer,
    EventChannel,
    EventType,
)


class EventInputSerializer(serializers.Serializer):
    event_id = serializers.UUIDField(help_text="Idempotency key: an event is stored once.")
    customer_id = serializers.CharField(max_length=MAX_ID_LENGTH)
    type = serializers.ChoiceField(choices=EventType.choices)
    item_id = serializers.CharField(max_length=MAX_ID_LENGTH, required=False)
    value = serializers.FloatField(required=False, help_text="E.g. revenue of a purchase.")
    channel = serializers.ChoiceField(choices=EventChannel.choices, required=False)
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
    aliases: serializers.SlugRelatedField = serializers.SlugRelatedField(
        many=True, read_only=True, slug_field="alias"
    )
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
    source = serializers.CharField()  # type: ignore[assignment]
    changed_at = serializers.DateTimeField()


class ConsentInputSerializer(serializers.Serializer):
    purpose = serializers.ChoiceField(choices=ConsentPurpose.choices)
    granted = serializers.BooleanField()
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=[ConsentSource.API, ConsentSource.WEBHOOK], default=ConsentSource.API
    )
    note = serializers.CharField(max_length=500, required=False, default="")


class ErasureOutputSerializer(serializers.Serializer):
    pseudonym = serializers.CharField()
    removed = serializers.DictField(child=serializers.IntegerField())
    erased_at = serializers.DateTimeField()


class EndpointInputSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=Channel.choices)
    address = serializers.CharField(max_length=512)
    opted_out = serializers.BooleanField(default=False)


class CustomerInputSerializer(serializers.Serializer):
    """Identify a customer: every field optional; `attributes` are merged into the stored ones
    (a null value removes a key); `endpoints` are added or updated by (channel, address)."""

    email = serializers.EmailField(required=False, allow_blank=True)
    phone = serializers.RegexField(r"^\+?[0-9 ()-]{5,31}$", required=False, allow_blank=True)
    first_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    country = serializers.RegexField(r"^[A-Z]{2}$", required=False, allow_blank=True)
    timezone = serializers.CharField(max_length=64, required=False, allow_blank=True)
    language = serializers.CharField(max_length=16, required=False, allow_blank=True)
    birth_date = serializers.DateField(required=False, allow_null=True)
    gender = serializers.CharField(max_length=16, required=False, allow_blank=True)
    attributes = serializers.DictField(required=False)
    endpoints = EndpointInputSerializer(many=True, required=False)

    def validate_timezone(self, value: str) -> str:
        if value:
            try:
                zoneinfo.ZoneInfo(value)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
                raise serializers.ValidationError(f"Unknown time zone '{value}'.") from exc
        return value


class CustomerSegmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.CharField()


class CustomerSegmentsOutputSerializer(serializers.Serializer):
    customer_id = serializers.CharField()
    evaluated_at = serializers.DateTimeField()
    segments = CustomerSegmentSerializer(many=True)

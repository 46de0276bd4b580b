from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from recommender.offers_serving import DEFAULT_K, MAX_CANDIDATES, MAX_K

MAX_CONTEXT_KEYS = 50
MAX_ID_LENGTH = 128


# Parsed JSON holds exactly these types (no subclasses), so a set look-up of the type is
# enough, and much cheaper per value than isinstance over a union (20 candidates a call).
_SCALARS = frozenset({str, int, float, bool, type(None)})
_LIST_SCALARS = frozenset({str, int, float, bool})


def _scalar_or_list(value: Any) -> bool:
    kind = type(value)
    if kind in _SCALARS:
        return True
    if kind is list:
        return len(value) <= 50 and all(type(v) in _LIST_SCALARS for v in value)
    return False


def _features(value: Any, *, label: str) -> dict:
    if not isinstance(value, dict):
        raise serializers.ValidationError(f"{label} must be an object.")
    if len(value) > MAX_CONTEXT_KEYS:
        raise serializers.ValidationError(f"{label} may have at most {MAX_CONTEXT_KEYS} keys.")
    if all(type(v) in _SCALARS for v in value.values()):
        return value
    bad = sorted(str(k) for k, v in value.items() if not _scalar_or_list(v))
    if bad:
        raise serializers.ValidationError(
            f"{label} values must be strings, numbers, booleans or lists of them: {bad}."
        )
    return value


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "description": "`offer:<pk>`, `item:<id>` or a bare id"},
            {"type": "integer", "description": "an offer id"},
            {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "features": {"type": "object", "additionalProperties": True},
                },
                "required": ["id"],
            },
        ]
    }
)
class CandidateField(serializers.Field):
    """An offer or item id (`offer:<pk>`, `item:<id>` or bare), or an inline action
    `{"id": ..., "features": {...}}`."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            raise serializers.ValidationError("A candidate is an id or an {id, features} object.")
        if isinstance(data, int | str):
            text = str(data)
            if not text or len(text) > MAX_ID_LENGTH:
                raise serializers.ValidationError("A candidate id has 1 to 128 characters.")
            return data
        if isinstance(data, dict):
            unknown = set(data) - {"id", "features"}
            if unknown:
                raise serializers.ValidationError(f"Unknown keys {sorted(unknown)}.")
            action_id = data.get("id")
            if isinstance(action_id, bool) or not isinstance(action_id, int | str):
                raise serializers.ValidationError("An inline candidate needs an id.")
            if not str(action_id) or len(str(action_id)) > MAX_ID_LENGTH:
                raise serializers.ValidationError("A candidate id has 1 to 128 characters.")
            features = _features(data.get("features") or {}, label="features")
            return {"id": str(action_id), "features": features}
        raise serializers.ValidationError("A candidate is an id or an {id, features} object.")

    def to_representation(self, value):
        return value


class OfferRankInputSerializer(serializers.Serializer):
    customer_id = serializers.CharField(max_length=128)
    # The metaclass moves declared fields off the class, so this does not shadow
    # Serializer.context at runtime; mypy sees the class attribute.
    context = serializers.JSONField(required=False, default=dict)  # type: ignore[assignment]
    candidates = serializers.ListField(
        child=CandidateField(), required=False, max_length=MAX_CANDIDATES, allow_empty=True
    )
    placement = serializers.RegexField(
        r"^[A-Za-z0-9_.:-]+$", max_length=64, required=False, default=""
    )
    k = serializers.IntegerField(min_value=1, max_value=MAX_K, default=DEFAULT_K)
    experiment = serializers.SlugField(
        required=False,
        max_length=64,
        help_text="An experiment key: the customer is assigned (sticky, exposure logged) and "
        'the variant\'s config picks the ranking: {"policy": "learned"} (default), '
        '{"policy": "priority"} (the given / priority order, no exploration), '
        '{"exploration": 0.05} (that exploration share). The response reports '
        "`experiment` and `variant`.",
    )

    def validate_context(self, value):
        return _features(value, label="context")


class RankedOfferSerializer(serializers.Serializer):
    id = serializers.CharField()
    probability = serializers.FloatField(
        help_text="The probability that this candidate would be put first for this request."
    )


class OfferRankOutputSerializer(serializers.Serializer):
    event_id = serializers.UUIDField(
        allow_null=True, help_text="Null when no candidate was eligible (nothing logged)."
    )
    ranking = RankedOfferSerializer(many=True)
    model_version = serializers.IntegerField()
    experiment = serializers.CharField(
        required=False, help_text="The experiment key asked for (only with `experiment`)."
    )
    variant = serializers.CharField(
        required=False,
        allow_null=True,
        help_text="The variant that ranked; null when the customer is not in the experiment "
        "(the default ranking was served).",
    )
    reason = serializers.CharField(
        required=False,
        help_text="Why the customer is not in the experiment (only when `variant` is null): "
        "holdout, traffic, global_control, not_in_audience or not_running.",
    )


class OfferRewardInputSerializer(serializers.Serializer):
    event_id = serializers.UUIDField()
    reward = serializers.FloatField(min_value=0.0, max_value=1.0)


class OfferRewardOutputSerializer(serializers.Serializer):
    event_id = serializers.UUIDField()
    status = serializers.ChoiceField(
        choices=["recorded", "duplicate"],
        help_text="`duplicate`: a reward was already recorded for this event and is kept.",
    )

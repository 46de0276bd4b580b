"""The segments API: rule segments created and changed by automation, live previews, members,
and the real-time membership of one customer (for triggers and in-app targeting)."""

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from marketing.authentication import HasScope
from profiles.models import Segment, SegmentKind
from profiles.segments import selectors
from profiles.segments.detail import segment_rules_in_words
from profiles.segments.rules import rules_describe
from profiles.segments.services import (
    segment_create,
    segment_delete,
    segment_refresh_schedule,
    segment_update,
)

ERROR = OpenApiResponse(description='Error body: {"code", "message", "extra"}')
RULES_ERROR = OpenApiResponse(
    description='Invalid rules: code "invalid_segment_rules", `extra.errors` maps the path of '
    'each offending condition (e.g. "conditions.1.conditions.0") to its message.'
)
MEMBERS_PAGE = 100
MEMBERS_PAGE_MAX = 1000

RULES_HELP = (
    'A group {"op": "and"|"or", "conditions": [...]} of conditions and nested groups; see '
    "the condition kinds profile, feature, event, consent, reachable and segment in the README."
)


class SegmentOutputSerializer(serializers.ModelSerializer):
    rules_text = serializers.SerializerMethodField()

    class Meta:
        model = Segment
        fields = [
            "id",
            "name",
            "description",
            "kind",
            "rules",
            "rules_text",
            "definition",
            "member_count",
            "counted_at",
            "created_at",
            "updated_at",
        ]

    def get_rules_text(self, segment: Segment) -> str:
        return segment_rules_in_words(segment=segment, names=self.context.get("segment_names", {}))


class SegmentCreateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    rules = serializers.JSONField(help_text=RULES_HELP)


class SegmentUpdateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    rules = serializers.JSONField(required=False, help_text=RULES_HELP)


class SegmentPreviewInputSerializer(serializers.Serializer):
    rules = serializers.JSONField(help_text=RULES_HELP)
    sample_size = serializers.IntegerField(min_value=0, max_value=100, default=10)


class SegmentPreviewOutputSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    sample = serializers.ListField(child=serializers.CharField(), help_text="Customer ids.")
    rules = serializers.JSONField(help_text="The rules as normalized by validation.")
    rules_text = serializers.CharField()
    elapsed_ms = serializers.FloatField()


class SegmentMembersOutputSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    counted_at = serializers.DateTimeField(allow_null=True)
    offset = serializers.IntegerField()
    members = serializers.ListField(child=serializers.CharField(), help_text="Customer ids.")


class SegmentRefreshOutputSerializer(serializers.Serializer):
    scheduled = serializers.BooleanField()


def _segment_names() -> dict[int, str]:
    return dict(Segment.objects.values_list("pk", "name"))


@extend_schema(tags=["segments"])
class SegmentViewSet(viewsets.GenericViewSet):
    """Segments by id. Storefront keys need `segments:read` / `segments:write`; logged-in
    users read with any role and write when their role may edit."""

    permission_classes = [HasScope]
    required_scopes = {
        "GET": "segments:read",
        "POST": "segments:write",
        "PATCH": "segments:write",
        "DELETE": "segments:write",
        "preview": "segments:read",
    }
    serializer_class = SegmentOutputSerializer
    lookup_url_kwarg = "id"
    lookup_value_regex = "[0-9]+"

    # The list is every segment at once (a shop has tens), not a page.
    pagination_class = None

    def get_queryset(self):
        return selectors.segment_list_for_api()

    def get_object(self):
        segment = selectors.segment_get(pk=int(self.kwargs["id"]))
        if segment is None:
            raise Http404("No such segment")
        return segment

    def _render(self, segment, code=status.HTTP_200_OK):
        context = {"segment_names": _segment_names()}
        return Response(SegmentOutputSerializer(segment, context=context).data, status=code)

    @extend_schema(responses={200: SegmentOutputSerializer(many=True)})
    def list(self, request):
        context = {"segment_names": _segment_names()}
        return Response(
            SegmentOutputSerializer(self.get_queryset(), many=True, context=context).data
        )

    @extend_schema(
        request=SegmentCreateInputSerializer,
        responses={201: SegmentOutputSerializer, 400: RULES_ERROR, 409: ERROR},
        description="Create a rule segment; its members are materialized in the background.",
    )
    def create(self, request):
        data = SegmentCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        segment = segment_create(**data.validated_data, user=_user(request))
        return self._render(segment, status.HTTP_201_CREATED)

    @extend_schema(responses={200: SegmentOutputSerializer, 404: ERROR})
    def retrieve(self, request, id=None):
        return self._render(self.get_object())

    @extend_schema(
        request=SegmentUpdateInputSerializer,
        responses={200: SegmentOutputSerializer, 400: RULES_ERROR, 404: ERROR, 409: ERROR},
        description="Change the name, description or rules. Invalid rules change nothing.",
    )
    def partial_update(self, request, id=None):
        segment = self.get_object()
        data = SegmentUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return self._render(segment_update(segment=segment, **data.validated_data))

    @extend_schema(responses={204: None, 404: ERROR, 409: ERROR})
    def destroy(self, request, id=None):
        segment_delete(segment=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=SegmentPreviewInputSerializer,
        responses={200: SegmentPreviewOutputSerializer, 400: RULES_ERROR},
        description="Count rules being edited and return a sample of members, without saving.",
    )
    @action(detail=False, methods=["post"])
    def preview(self, request):
        data = SegmentPreviewInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        preview = selectors.segment_preview(
            rules=data.validated_data["rules"], sample_size=data.validated_data["sample_size"]
        )
        body = {
            "count": preview.count,
            "sample": [c.external_id for c in preview.sample],
            "rules": preview.rules,
            "rules_text": rules_describe(preview.rules, _segment_names()),
            "elapsed_ms": preview.elapsed_ms,
        }
        return Response(SegmentPreviewOutputSerializer(body).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("offset", int, description="Skip this many members."),
            OpenApiParameter("limit", int, description=f"At most {MEMBERS_PAGE_MAX}."),
        ],
        responses={200: SegmentMembersOutputSerializer, 404: ERROR},
        description="The materialized members (for a rule segment: as of its last refresh).",
    )
    @action(detail=True, methods=["get"])
    def members(self, request, id=None):
        segment = self.get_object()
        offset = _int_param(request, "offset", 0, 0, 10**9)
        limit = _int_param(request, "limit", MEMBERS_PAGE, 1, MEMBERS_PAGE_MAX)
        ids = list(
            selectors.segment_members(segment=segment).values_list("external_id", flat=True)[
                offset : offset + limit
            ]
        )
        body = {
            "count": segment.member_count,
            "counted_at": segment.counted_at,
            "offset": offset,
            "members": ids,
        }
        return Response(SegmentMembersOutputSerializer(body).data)

    @extend_schema(
        request=None,
        responses={202: SegmentRefreshOutputSerializer, 400: ERROR, 404: ERROR},
        description="Materialize a rule segment's members now (in the background).",
    )
    @action(detail=True, methods=["post"])
    def refresh(self, request, id=None):
        segment = self.get_object()
        if segment.kind != SegmentKind.RULES:
            raise serializers.ValidationError(
                {"segment": ["Only rule segments are refreshed; the others are fixed lists."]}
            )
        segment_refresh_schedule(segment=segment)
        return Response({"scheduled": True}, status=status.HTTP_202_ACCEPTED)


def _int_param(request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise serializers.ValidationError({name: ["A whole number is required."]}) from exc
    if not low <= value <= high:
        raise serializers.ValidationError({name: [f"Between {low} and {high}."]})
    return value


def _user(request):
    return request.user if getattr(request.user, "_meta", None) is not None else None

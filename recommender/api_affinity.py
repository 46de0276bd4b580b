"""`POST /api/v1/segments/affinity`: start an affinity segment build (marketers, by session)."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.response import Response
from rest_framework.views import APIView

from marketing.authentication import HasScope
from recommender import segment_affinity


class AffinitySegmentCreateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    item_id = serializers.CharField(
        max_length=128, required=False, help_text="Score customers for this item (its id)."
    )
    expression = serializers.CharField(
        max_length=2000,
        required=False,
        help_text='Or for the items matching an attribute expression, e.g. `category = "books" '
        'and price < 20` or `brand in ("A", "B")`.',
    )
    top_n = serializers.IntegerField(
        min_value=1, max_value=segment_affinity.MAX_TOP_N, required=False
    )
    top_percent = serializers.FloatField(min_value=0.01, max_value=100, required=False)

    def validate(self, attrs):
        if bool(attrs.get("item_id")) == bool(attrs.get("expression")):
            raise serializers.ValidationError(
                {"expression": "Give either item_id or expression, not both."}
            )
        if (attrs.get("top_n") is None) == (attrs.get("top_percent") is None):
            raise serializers.ValidationError(
                {"top_n": "Give either top_n or top_percent, not both."}
            )
        return attrs


class AffinitySegmentJobOutputSerializer(serializers.Serializer):
    job_id = serializers.IntegerField()
    status = serializers.CharField()


class AffinitySegmentCreateView(APIView):
    """Marketers (logged in) start the build; the segment appears when the job is done."""

    authentication_classes = [SessionAuthentication]
    permission_classes = [HasScope]

    @extend_schema(
        tags=["segments"],
        operation_id="segments_affinity_create",
        summary="Build a segment of the customers most likely to interact with an item or "
        "with the items matching an attribute expression.",
        request=AffinitySegmentCreateInputSerializer,
        responses={
            202: AffinitySegmentJobOutputSerializer,
            400: OpenApiResponse(
                description="Invalid input (`extra.fields` names the fields: a bad expression "
                "gives its position) or no personalized model to score with."
            ),
            403: OpenApiResponse(description="Not logged in, or the role can only read."),
            409: OpenApiResponse(description="A segment with this name exists."),
        },
    )
    def post(self, request):
        data = AffinitySegmentCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            job = segment_affinity.affinity_segment_create(**data.validated_data, user=request.user)
        except segment_affinity.AffinityRequestError as exc:
            errors = {field: [message] for field, message in exc.extra["errors"].items()}
            raise serializers.ValidationError(errors) from exc
        return Response(
            AffinitySegmentJobOutputSerializer({"job_id": job.pk, "status": job.status}).data,
            status=status.HTTP_202_ACCEPTED,
        )

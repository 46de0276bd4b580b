"""`POST /api/v1/segments/import` and `POST /api/v1/segments/{id}/import`: imported segments
for automation, by logged-in marketers (session); storefront API keys cannot call them."""

from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from marketing.authentication import HasScope
from profiles.forms_segment_imports import FILE_HELP, segment_upload_clean
from profiles.models import Segment
from profiles.segments.errors import SegmentImportError
from profiles.segments.imports import (
    SegmentImportOutcome,
    imported_segment_get,
    segment_import_start,
)


class SegmentImportFileInputSerializer(serializers.Serializer):
    file = serializers.FileField(help_text=FILE_HELP)

    def validate_file(self, upload):
        return segment_upload_clean(upload)


class SegmentImportInputSerializer(SegmentImportFileInputSerializer):
    name = serializers.CharField(max_length=Segment._meta.get_field("name").max_length)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class SegmentImportUnknownRowSerializer(serializers.Serializer):
    row = serializers.IntegerField(help_text="As a spreadsheet shows it: the header is row 1.")
    value = serializers.CharField()
    reason = serializers.CharField()


class SegmentImportOutputSerializer(serializers.Serializer):
    segment_id = serializers.IntegerField()
    segment_name = serializers.CharField()
    file_name = serializers.CharField()
    column = serializers.CharField(help_text="What the rows were matched by: external_id or email.")
    rows = serializers.IntegerField(help_text="matched + duplicates + unknown")
    matched = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    unknown = serializers.IntegerField()
    members = serializers.IntegerField(help_text="Distinct customers the matched rows name.")
    blank = serializers.IntegerField(help_text="Blank lines, skipped.")
    unknown_rows = SegmentImportUnknownRowSerializer(many=True, help_text="The first 1,000.")
    unknown_rows_truncated = serializers.BooleanField()


class SegmentImportJobOutputSerializer(serializers.Serializer):
    job_id = serializers.IntegerField()
    status = serializers.CharField()


RESPONSES = {
    202: OpenApiResponse(
        SegmentImportJobOutputSerializer,
        description="A big file: it is imported by a background job.",
    ),
    400: OpenApiResponse(
        description="Invalid input: `extra.fields.file` says why the file cannot be imported "
        "(empty, not CSV, no customer_id/external_id or email column, no rows)."
    ),
    403: OpenApiResponse(description="Not logged in, or the role can only read."),
}


def _respond(outcome: SegmentImportOutcome, *, created: bool) -> Response:
    if outcome.segment is None or outcome.report is None:
        job = outcome.job
        body = {"job_id": job.pk if job else None, "status": job.status if job else ""}
        return Response(
            SegmentImportJobOutputSerializer(body).data, status=status.HTTP_202_ACCEPTED
        )
    body = {
        "segment_id": outcome.segment.pk,
        "segment_name": outcome.segment.name,
        **outcome.report.as_dict(),
    }
    return Response(
        SegmentImportOutputSerializer(body).data,
        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
    )


def _start(request, serializer_class, segment: Segment | None = None) -> Response:
    data = serializer_class(data=request.data)
    data.is_valid(raise_exception=True)
    try:
        outcome = segment_import_start(**data.validated_data, segment=segment, user=request.user)
    except SegmentImportError as exc:
        raise serializers.ValidationError({"file": [exc.message]}) from exc
    return _respond(outcome, created=segment is None)


class SegmentImportView(APIView):
    authentication_classes = [SessionAuthentication]
    permission_classes = [HasScope]
    parser_classes = [MultiPartParser]

    @extend_schema(
        tags=["segments"],
        operation_id="segments_import_create",
        summary="Create an imported segment from a CSV of customer ids or emails.",
        description="The header names a `customer_id` (or `external_id`) or an `email` "
        "column. Rows naming no customer are reported by row number; nothing is created "
        "when the file cannot be imported or the name is taken.",
        request=SegmentImportInputSerializer,
        responses={
            201: SegmentImportOutputSerializer,
            **RESPONSES,
            409: OpenApiResponse(description="The name is taken."),
        },
    )
    def post(self, request):
        return _start(request, SegmentImportInputSerializer)


class SegmentImportReplaceView(APIView):
    authentication_classes = [SessionAuthentication]
    permission_classes = [HasScope]
    parser_classes = [MultiPartParser]

    @extend_schema(
        tags=["segments"],
        operation_id="segments_import_replace",
        summary="Replace the members of an imported segment with a new CSV file.",
        request=SegmentImportFileInputSerializer,
        responses={
            200: SegmentImportOutputSerializer,
            **RESPONSES,
            404: OpenApiResponse(description="No such imported segment."),
        },
    )
    def post(self, request, id: int):
        segment = imported_segment_get(pk=id)
        if segment is None:
            raise Http404("No such imported segment")
        return _start(request, SegmentImportFileInputSerializer, segment)

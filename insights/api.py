from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from insights.ingest import MAX_BATCH
from insights.serializers import PostIngestOutputSerializer, PostInputSerializer
from insights.services import posts_ingest
from marketing.authentication import HasScope
from marketing.common.parsers import OrjsonParser

ERROR = OpenApiResponse(description='Error body: {"code", "message", "extra"}')


class SocialPostIngestView(APIView):
    """Social-media posts: one object or a list of up to 1,000."""

    permission_classes = [HasScope]
    parser_classes = [OrjsonParser]
    required_scopes = {"POST": "social:write"}

    @extend_schema(
        operation_id="social_posts_create",
        tags=["social"],
        request=PostInputSerializer(many=True),
        responses={200: PostIngestOutputSerializer, 400: ERROR, 401: ERROR, 403: ERROR},
        description="Stores each post once per (source, external_id): a post sent again "
        "updates its metrics. New posts get their brand mentions, sentiment and aspects, and "
        "are linked to a known customer by author handle or email. A batch with an invalid "
        "post is refused whole: nothing of it is stored, and `extra.rows` lists the errors "
        "by index and field.",
    )
    def post(self, request):
        payload = request.data
        if isinstance(payload, dict):
            payload = [payload]
        problem = None
        if not isinstance(payload, list):
            problem = "Send one post object or a list of post objects."
        elif not payload:
            problem = "The batch is empty."
        elif len(payload) > MAX_BATCH:
            problem = f"At most {MAX_BATCH} posts per request; got {len(payload)}."
        if problem:
            return _invalid({}, [problem])
        result = posts_ingest(payload, strict=True, all_or_nothing=True)
        if result.errors:
            return _invalid(result.errors_by_row(), [])
        return Response(
            {
                "created": result.created,
                "updated": result.updated,
                "mentions": result.mentions,
                "linked": result.linked,
            },
            status=status.HTTP_200_OK,
        )


def _invalid(rows: dict, non_field: list[str]) -> Response:
    return Response(
        {
            "code": "invalid",
            "message": "The batch was refused; nothing was stored.",
            "extra": {"rows": rows, "non_field_errors": non_field},
        },
        status=status.HTTP_400_BAD_REQUEST,
    )

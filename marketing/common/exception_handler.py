"""One exception handler: every API error body is {"code", "message", "extra"}."""

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from marketing.common.errors import ApplicationError


def api_exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        return Response(
            {"code": exc.code, "message": exc.message, "extra": exc.extra},
            status=exc.http_status,
        )
    if isinstance(exc, ObjectDoesNotExist | Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoValidationError):
        extra = (
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
        return Response(
            {"code": "invalid", "message": "Invalid input.", "extra": {"fields": extra}},
            status=status.HTTP_400_BAD_REQUEST,
        )
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        body = {"code": "invalid", "message": "Invalid input.", "extra": {"fields": response.data}}
    else:
        detail = getattr(exc, "detail", str(exc))
        codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        body = {
            "code": codes if isinstance(codes, str) else "error",
            "message": str(detail),
            "extra": {},
        }
        wait = getattr(exc, "wait", None)
        if wait is not None:
            body["extra"]["retry_after_seconds"] = wait
    response.data = body
    return response

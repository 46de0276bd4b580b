"""Public endpoints the providers call (no login, no CSRF; each checks its provider's signature).

Errors answer with the API's body shape `{"code", "message", "extra"}`.
"""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from campaigns import webhook_services as services
from campaigns.providers.base import MESSAGE_ID_ARG
from campaigns.webhook_messages import twilio_status_apply
from marketing.common.errors import ApplicationError


def _error(exc: ApplicationError) -> JsonResponse:
    return JsonResponse(
        {"code": exc.code, "message": exc.message, "extra": exc.extra}, status=exc.http_status
    )


@csrf_exempt
@require_POST
def sendgrid_events_view(request: HttpRequest) -> HttpResponse:
    try:
        payload = request.body.decode("utf-8")
    except UnicodeDecodeError:
        return _error(services.WebhookPayloadError("The body is not UTF-8.", code="invalid_json"))
    try:
        services.sendgrid_signature_verify(
            payload=payload,
            signature=request.headers.get(services.SENDGRID_SIGNATURE_HEADER, ""),
            timestamp=request.headers.get(services.SENDGRID_TIMESTAMP_HEADER, ""),
        )
        result = services.sendgrid_events_apply(events=services.sendgrid_events_parse(payload))
    except ApplicationError as exc:
        return _error(exc)
    return JsonResponse(
        {
            "events": result.events,
            "consents": result.consents,
            "endpoints": result.endpoints,
            "ignored": result.ignored,
        }
    )


def _twilio_refused(request: HttpRequest) -> JsonResponse | None:
    """The error response when X-Twilio-Signature does not match (None: it does)."""
    try:
        services.twilio_signature_verify(
            url=request.build_absolute_uri(),
            params=request.POST,
            signature=request.headers.get(services.TWILIO_SIGNATURE_HEADER, ""),
        )
    except ApplicationError as exc:
        return _error(exc)
    return None


@csrf_exempt
@require_POST
def twilio_inbound_view(request: HttpRequest) -> HttpResponse:
    refused = _twilio_refused(request)
    if refused is not None:
        return refused
    services.twilio_inbound_apply(
        from_number=request.POST.get("From", ""),
        body=request.POST.get("Body", ""),
        message_sid=request.POST.get("MessageSid", ""),
    )
    return HttpResponse(
        '<?xml version="1.0" encoding="UTF-8"?><Response/>', content_type="text/xml"
    )


@csrf_exempt
@require_POST
def twilio_status_view(request: HttpRequest) -> HttpResponse:
    """Twilio's StatusCallback of an SMS we sent; `message_id` (our key) is in the query
    string, which the signature covers (it signs the full URL)."""
    refused = _twilio_refused(request)
    if refused is not None:
        return refused
    result = twilio_status_apply(
        message_key=request.GET.get(MESSAGE_ID_ARG, ""),
        status=request.POST.get("MessageStatus", ""),
        error_code=request.POST.get("ErrorCode", ""),
        message_sid=request.POST.get("MessageSid", ""),
    )
    return JsonResponse(
        {"message": result.message, "endpoints": result.endpoints, "ignored": result.ignored}
    )

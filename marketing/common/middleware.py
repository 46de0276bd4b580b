import logging
import sys

from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequired
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views import defaults

logger = logging.getLogger(__name__)

# The API authenticates with its own keys and answers 401/403 in JSON; health checks,
# static files, recipients' unsubscribe links and provider webhooks (signed) are public.
# Everything else (pages, admin) needs a logged-in user.
PUBLIC_PREFIXES = ("/api/", "/healthz", "/static/", "/u/", "/favicon.ico", "/webhooks/")


class LoginRequiredMiddleware(DjangoLoginRequired):
    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path.startswith(PUBLIC_PREFIXES):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)


RETRY_AFTER_SECONDS = 5


def database_unavailable_response(request: HttpRequest, exception: BaseException) -> HttpResponse:
    """503 with Retry-After: the API's error body for API calls, a plain page otherwise
    (rendered without the request, so no context processor touches the lost database)."""
    logger.warning(
        "database unavailable",
        extra={"path": request.path, "error": f"{type(exception).__name__}"},
    )
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse(
            {
                "code": "database_unavailable",
                "message": "The database is unavailable; retry shortly.",
                "extra": {"retry_after_seconds": RETRY_AFTER_SECONDS},
            },
            status=503,
        )
    else:
        response = HttpResponse(render_to_string("503.html"), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: an unhandled OperationalError/InterfaceError raised outside a view (the
    session or the user loaded by a middleware, a page's login check) answers 503 like one
    raised in a view; anything else gets Django's 500 page."""
    exception = sys.exc_info()[1]
    if isinstance(exception, OperationalError | InterfaceError):
        return database_unavailable_response(request, exception)
    return defaults.server_error(request)


class DatabaseUnavailableMiddleware:
    """A view that lost PostgreSQL (a restart, a failover, too many connections) answers 503
    with Retry-After and the API's error body instead of a 500 traceback: the client may
    retry, and nothing was acknowledged. Django drops the broken connection at the end of
    the request, so the next request connects afresh. The same error raised before the view
    (by another middleware) reaches `server_error`, the handler500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        return database_unavailable_response(request, exception)

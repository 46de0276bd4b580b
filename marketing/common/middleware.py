import logging

from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequired
from django.db import InterfaceError, OperationalError
from django.http import JsonResponse

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


class DatabaseUnavailableMiddleware:
    """A view that lost PostgreSQL (a restart, a failover, too many connections) answers 503
    with Retry-After and the API's error body instead of a 500 traceback: the client may
    retry, and nothing was acknowledged. Django drops the broken connection at the end of
    the request, so the next request connects afresh."""

    RETRY_AFTER_SECONDS = 5

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        logger.warning(
            "database unavailable",
            extra={"path": request.path, "error": f"{type(exception).__name__}"},
        )
        response = JsonResponse(
            {
                "code": "database_unavailable",
                "message": "The database is unavailable; retry shortly.",
                "extra": {"retry_after_seconds": self.RETRY_AFTER_SECONDS},
            },
            status=503,
        )
        response["Retry-After"] = str(self.RETRY_AFTER_SECONDS)
        return response

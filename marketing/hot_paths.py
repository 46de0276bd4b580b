"""The storefront calls with a latency budget of a few milliseconds, served before Django's
middleware and URL resolver (wrapped around the WSGI application in marketing/wsgi.py).

`POST /api/v1/experiments/{key}/assign` (5 ms at p99) and `POST /api/v1/offers/rank` go to
their hot handlers (experiments.api._assign_fast, recommender.api_offers._rank_fast) with a
Django request built from the WSGI environ. A handler answers the calls it is sure of (a
storefront key with the scope, a valid JSON body, ...) or returns None, and the call then
takes the whole way through Django: middleware, the URL's view, DRF, which stays the
contract for everything else. What the skipped middleware would do to such a call is done
here: the host is checked against ALLOWED_HOSTS and an HTTPS redirect is left to Django;
the security and clickjacking headers are added by Django's own middleware classes;
request_started / request_finished are sent as by Django's handler (database connections
past their age are closed); an exception answers as in a view (503 for a lost database,
else Django's 500 handling). Nothing else of the stack concerns these calls (no session, no
user, no CSRF: an API key authenticates them).

Skipping the middleware chain and the resolver is about a quarter of a millisecond per call
on this 2-CPU machine, a twentieth of the assignment's budget.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core import signals
from django.core.exceptions import DisallowedHost, RequestDataTooBig
from django.core.handlers.exception import response_for_exception
from django.core.handlers.wsgi import WSGIRequest
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware
from django.urls import set_urlconf
from rest_framework import exceptions

from marketing.authentication import KEYWORD, api_key_authenticate
from marketing.common.middleware import database_unavailable_response
from marketing.models import ApiKey

_JSON_ACCEPT = ("", "*/*", "application/json")


def hot_call_key(request: HttpRequest, *, scope: str) -> ApiKey | None:
    """The verified API key of a call a hot handler may answer: a POST with `Api-Key`
    authentication and the scope, a JSON body in UTF-8, JSON accepted, no `?format=`. None
    for anything else: the DRF view answers it (its errors, the browsable API ...)."""
    meta = request.META
    keyword, _, raw = meta.get("HTTP_AUTHORIZATION", "").partition(" ")
    if (
        request.method != "POST"
        or keyword != KEYWORD
        or meta.get("HTTP_ACCEPT", "") not in _JSON_ACCEPT
        or request.content_type != "application/json"
        or (request.content_params or {}).get("charset", "utf-8").lower() not in ("utf-8", "utf8")
        or "format" in request.GET
    ):
        return None
    try:
        api_key = api_key_authenticate(raw)
    except exceptions.AuthenticationFailed:
        return None
    return api_key if api_key.has_scope(scope) else None


def hot_json_response(body: dict, *, allow: str) -> HttpResponse:
    """`body` rendered as DRF's JSONRenderer renders it (compact, UTF-8, U+2028/9 escaped),
    with the headers DRF's view adds (Vary: Accept, Allow)."""
    content = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    content = content.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    response = HttpResponse(content.encode(), content_type="application/json")
    response["Vary"] = "Accept"
    response["Allow"] = allow
    return response


# Set in the environ when a hot handler declined the call: the view at the same URL then
# goes straight to DRF instead of trying the hot handler a second time.
DECLINED = "marketing.hot_path_declined"

Handler = Callable[..., HttpResponse | None]


def _routes() -> list[tuple[re.Pattern[str], Handler]]:
    from experiments.api import _assign_fast
    from recommender.api_offers import _rank_fast

    return [
        (re.compile(r"^/api/v1/experiments/(?P<key>[-a-zA-Z0-9_]+)/assign/?$"), _assign_fast),
        (re.compile(r"^/api/v1/offers/rank/?$"), _rank_fast),
    ]


def _unused(request: HttpRequest) -> HttpResponse:  # the middleware below never call it
    raise AssertionError("not called")


class HotPaths:
    """WSGI middleware: the hot calls answered by their handlers, the rest by `app`."""

    def __init__(self, app: Callable) -> None:
        self.app = app
        self.routes = _routes()
        self.response_middleware = (
            SecurityMiddleware(_unused),
            XFrameOptionsMiddleware(_unused),
        )

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "POST":
            path = environ.get("PATH_INFO", "")
            for pattern, handler in self.routes:
                match = pattern.match(path)
                if match is not None:
                    response = self._serve(environ, handler, match.groupdict())
                    if response is not None:
                        return self._respond(response, start_response)
                    break
        return self.app(environ, start_response)

    def _serve(self, environ: dict, handler: Handler, kwargs: dict) -> HttpResponse | None:
        set_urlconf(settings.ROOT_URLCONF)
        request = WSGIRequest(environ)
        try:
            request.get_host()  # ALLOWED_HOSTS
            if settings.SECURE_SSL_REDIRECT and not request.is_secure():
                return None  # SecurityMiddleware's redirect
            body = request.body
        except (DisallowedHost, RequestDataTooBig):
            return None  # Django answers 400 / 413
        # Django reads the body again from the environ if the handler declines.
        environ["wsgi.input"] = io.BytesIO(body)
        signals.request_started.send(sender=self.__class__, environ=environ)
        try:
            response = handler(request, **kwargs)
        except (OperationalError, InterfaceError) as exc:
            response = database_unavailable_response(request, exc)
        except Exception as exc:  # noqa: BLE001 - answered as Django answers a view's error
            response = response_for_exception(request, exc)
        if response is None:
            signals.request_finished.send(sender=self.__class__)
            environ["wsgi.input"] = io.BytesIO(body)
            environ[DECLINED] = True
            return None
        for middleware in self.response_middleware:
            response = middleware.process_response(request, response)
        response._resource_closers.append(request.close)  # type: ignore[attr-defined]  # as WSGIHandler
        return response

    @staticmethod
    def _respond(response: HttpResponse, start_response: Callable) -> Any:
        """As django.core.handlers.wsgi.WSGIHandler.__call__: the response is the iterable,
        whose close() sends request_finished."""
        if not response.has_header("Content-Length"):
            response["Content-Length"] = str(len(response.content))
        headers = [
            *response.items(),
            *(("Set-Cookie", cookie.OutputString()) for cookie in response.cookies.values()),
        ]
        start_response(f"{response.status_code} {response.reason_phrase}", headers)
        return response

"""The recipient's side of a message: open pixel, click redirect, unsubscribe link.

Public (no login, no CSRF: mail clients and link scanners carry no session) and signed: the
token says which message and, for a click, where to; a token we did not sign is a 400 that
redirects nowhere. Each request is one UPDATE by the unique key, plus the profile event the
first time (see campaigns/outcomes.py).
"""

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from campaigns import outcomes, tracking
from profiles.models import ConsentPurpose

INVALID_LINK = "This link is not valid."


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store, private"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


@login_not_required
@require_GET
def track_open_view(request: HttpRequest, token: str) -> HttpResponse:
    try:
        key = tracking.open_token_read(token)
    except tracking.InvalidTokenError:
        return _no_store(HttpResponseBadRequest(INVALID_LINK, content_type="text/plain"))
    outcomes.message_open_record(key=key)
    return _no_store(HttpResponse(tracking.PIXEL_GIF, content_type="image/gif"))


@login_not_required
@require_http_methods(["GET", "HEAD"])
def track_click_view(request: HttpRequest, token: str) -> HttpResponse:
    """GET records the click and redirects; HEAD (link checkers) only redirects."""
    try:
        key, url = tracking.click_token_read(token)
    except tracking.InvalidTokenError:
        return _no_store(HttpResponseBadRequest(INVALID_LINK, content_type="text/plain"))
    if request.method == "GET":
        outcomes.message_click_record(key=key, url=url)
    return _no_store(HttpResponseRedirect(url))


@login_not_required
@csrf_exempt  # RFC 8058: the mail client POSTs `List-Unsubscribe=One-Click`, with no cookies
@require_http_methods(["GET", "POST"])
def track_unsubscribe_view(request: HttpRequest, token: str) -> HttpResponse:
    """GET asks (a link prefetcher must not unsubscribe anyone); POST, from the page's button
    or the mail client's one-click, withdraws the consent."""
    try:
        key = tracking.unsubscribe_token_read(token)
    except tracking.InvalidTokenError:
        recipient = None
    else:
        recipient = outcomes.message_recipient_get(key=key)
    if recipient is None:
        return _no_store(
            render(request, "profiles/unsubscribe.html", {"error": INVALID_LINK}, status=400)
        )
    if request.method == "POST":
        outcomes.message_unsubscribe(key=recipient.key)
    context = {
        "purpose_label": dict(ConsentPurpose.choices)[recipient.purpose],
        "done": request.method == "POST",
    }
    return _no_store(render(request, "profiles/unsubscribe.html", context))

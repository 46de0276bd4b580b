from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    """The request type of every page view: django-htmx's middleware adds `htmx`."""

    htmx: HtmxDetails

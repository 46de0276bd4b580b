"""marketing.hot_paths: the assignment and Rank calls served before Django's middleware, with
the same answers and headers, and everything they decline handed to Django once."""

import io
import json
import time

import pytest
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import OperationalError
from django.test import Client

from experiments import serving
from marketing.hot_paths import DECLINED, HotPaths
from marketing.services import api_key_create
from marketing.throttling import counter_quota
from recommender.offers_log import PENDING_KEY
from recommender.offers_policy import redis_client, redis_key
from tests.helpers import api_key_client, start_of_rate_window

# The hot paths send request_started / request_finished, whose handlers close connections
# that are not in autocommit: outside a test transaction.
pytestmark = pytest.mark.django_db(transaction=True)

ASSIGN = "/api/v1/experiments/banner/assign"
RANK = "/api/v1/offers/rank"


class Counting:
    """The Django application, counting the calls that reach it."""

    def __init__(self) -> None:
        self.django = WSGIHandler()
        self.calls: list[dict] = []

    def __call__(self, environ, start_response):
        self.calls.append(environ)
        return self.django(environ, start_response)


def call(app, path: str, body: dict, *, key: str, host: str = "testserver", query: str = ""):
    raw = json.dumps(body).encode()
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": host,
        "HTTP_AUTHORIZATION": f"Api-Key {key}",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(raw)),
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(raw),
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
    }
    started: list = []
    result = app(environ, lambda status, headers: started.append((status, headers)))
    try:
        content = b"".join(result)
    finally:
        result.close()
    status, headers = started[0]
    return int(status.split()[0]), dict(headers), content


@pytest.fixture(autouse=True)
def _fresh_process_cache():
    serving._configs.clear()
    yield
    serving._configs.clear()


@pytest.fixture
def banner():
    client = api_key_client("experiments:write")
    body = {
        "key": "banner",
        "variants": [{"key": "control", "weight": 1}, {"key": "red", "weight": 1}],
        "metric": {"event_type": "purchase", "window_days": 7},
    }
    assert client.post("/api/v1/experiments", body, format="json").status_code == 201
    assert client.post("/api/v1/experiments/banner/start").status_code == 200


def test_an_assignment_is_answered_before_django_with_djangos_headers(banner):
    key, raw = api_key_create(name="shop", scopes=["experiments:assign"])
    django = Counting()
    app = HotPaths(django)
    finished: list = []

    def on_finished(sender, **kwargs):
        finished.append(sender)

    signals.request_finished.connect(on_finished, dispatch_uid="hot-test")
    try:
        status, headers, content = call(app, ASSIGN, {"customer_id": "c-1"}, key=raw)
    finally:
        signals.request_finished.disconnect(dispatch_uid="hot-test")
    assert django.calls == []
    assert status == 200
    assert finished  # request_finished was sent (connections past their age are closed)
    # The same call through Django's whole stack (the test client: middleware, URL, view).
    through = Client().post(
        ASSIGN,
        {"customer_id": "c-1"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Api-Key {raw}",
    )
    assert content == through.content
    for header in (
        "Content-Type",
        "Vary",
        "Allow",
        "X-Content-Type-Options",
        "X-Frame-Options",
        "Referrer-Policy",
        "Cross-Origin-Opener-Policy",
    ):
        assert headers[header] == through[header]
    assert int(headers["Content-Length"]) == len(content)


def test_declined_calls_reach_django_once_and_are_answered_by_drf(banner):
    _, raw = api_key_create(name="reader", scopes=["experiments:read"])  # no assign scope
    django = Counting()
    status, _, content = call(HotPaths(django), ASSIGN, {"customer_id": "c-1"}, key=raw)
    assert status == 403
    assert json.loads(content)["code"] == "permission_denied"
    assert len(django.calls) == 1
    assert django.calls[0][DECLINED] is True
    _, good = api_key_create(name="shop", scopes=["experiments:assign"])
    status, _, content = call(HotPaths(django), ASSIGN, {"customer_id": ""}, key=good)
    assert status == 400
    assert "customer_id" in json.loads(content)["extra"]["fields"]


def test_a_host_outside_allowed_hosts_is_left_to_django(banner, settings):
    settings.ALLOWED_HOSTS = ["shop.example"]
    _, raw = api_key_create(name="shop", scopes=["experiments:assign"])
    django = Counting()
    status, _, _ = call(HotPaths(django), ASSIGN, {"customer_id": "c-1"}, key=raw, host="evil")
    assert status == 400
    assert len(django.calls) == 1
    status, _, _ = call(
        HotPaths(django), ASSIGN, {"customer_id": "c-1"}, key=raw, host="shop.example"
    )
    assert status == 200
    assert len(django.calls) == 1


def test_over_the_limit_the_call_is_counted_once_and_refused_by_drf(banner):
    key, raw = api_key_create(name="shop", scopes=["experiments:assign"], rate_limit="2/hour")
    start_of_rate_window(3600)
    django = Counting()
    app = HotPaths(django)
    answers = [call(app, ASSIGN, {"customer_id": f"c-{n}"}, key=raw) for n in range(3)]
    assert [status for status, _, _ in answers] == [200, 200, 429]
    assert answers[2][1]["Retry-After"]
    assert len(django.calls) == 1  # only the refused one
    quota = counter_quota(caller=f"key:{key.pk}", rate="2/hour", now=time.time())
    assert int(redis_client().get(quota.key)) == 3


def test_a_rank_call_is_answered_and_logged_before_django():
    _, raw = api_key_create(name="shop", scopes=["offers:read"])
    django = Counting()
    body = {"customer_id": "v-1", "candidates": [{"id": "a"}, {"id": "b"}], "k": 2}
    status, headers, content = call(HotPaths(django), RANK, body, key=raw)
    assert status == 200
    assert django.calls == []
    assert {r["id"] for r in json.loads(content)["ranking"]} == {"a", "b"}
    assert headers["X-Frame-Options"] == "DENY"
    assert redis_client().llen(redis_key(PENDING_KEY)) == 1


def test_errors_in_a_handler_answer_as_in_a_view():
    _, raw = api_key_create(name="shop", scopes=["offers:read"])
    app = HotPaths(Counting())

    def lost_database(request):
        raise OperationalError("server closed the connection unexpectedly")

    def broken(request):
        raise ValueError("a bug")

    app.routes = [(app.routes[1][0], lost_database)]
    status, headers, content = call(app, RANK, {"customer_id": "v"}, key=raw)
    assert status == 503
    assert headers["Retry-After"]
    assert json.loads(content)["code"] == "database_unavailable"
    app.routes = [(app.routes[0][0], broken)]
    status, _, _ = call(app, RANK, {"customer_id": "v"}, key=raw)
    assert status == 500


def test_other_calls_go_to_django_untouched():
    _, raw = api_key_create(name="shop", scopes=["offers:read"])
    django = Counting()
    status, _, _ = call(HotPaths(django), "/api/v1/offers/reward", {"event_id": "x"}, key=raw)
    assert status == 403  # the key lacks offers:write: DRF's answer
    assert len(django.calls) == 1
    assert DECLINED not in django.calls[0]

"""POST /api/v1/experiments/{key}/assign through the hot path (experiments.api.
experiment_assign_view): the same answers, errors and rate limit as the DRF action."""

import time

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from experiments import serving
from marketing.services import api_key_create
from marketing.throttling import ApiKeyRateThrottle, counter_quota
from tests.helpers import api_key_client, start_of_rate_window

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/experiments/banner/assign"
BODY = {
    "key": "banner",
    "variants": [{"key": "control", "weight": 1}, {"key": "red", "weight": 1}],
    "metric": {"event_type": "purchase", "window_days": 7},
    "allocation": "fixed",
    "holdout_percent": 20,
}


@pytest.fixture(autouse=True)
def _fresh_process_cache():
    serving._configs.clear()
    yield
    serving._configs.clear()


@pytest.fixture
def automation():
    client = api_key_client("experiments:read", "experiments:write", "experiments:assign")
    assert client.post("/api/v1/experiments", BODY, format="json").status_code == 201
    assert client.post("/api/v1/experiments/banner/start").status_code == 200
    return client


def keyed_client(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return client


def by_the_action(response) -> bool:
    """Whether DRF's view answered (its Response), not the hot path (a plain HttpResponse)."""
    return hasattr(response, "renderer_context")


def test_json_calls_are_served_by_the_hot_path_with_the_actions_answers(automation):
    for i in range(30):
        customer = f"c-{i}"
        hot = automation.post(URL, {"customer_id": customer}, format="json")
        assert not by_the_action(hot)
        # A form body is not the hot path's: the DRF action answers it.
        action = automation.post(URL, {"customer_id": customer})
        assert by_the_action(action)
        assert hot.status_code == action.status_code == 200
        assert hot.content == action.content
        for header in ("Content-Type", "Vary", "Allow"):
            assert hot[header] == action[header]
    reasons = {
        automation.post(URL, {"customer_id": f"c-{i}"}, format="json").json().get("reason")
        for i in range(30)
    }
    assert reasons == {None, "holdout"}


def test_the_hot_path_asks_postgresql_nothing_once_warm(automation, django_assert_num_queries):
    automation.post(URL, {"customer_id": "c-0"}, format="json")  # config cached, key verified
    with django_assert_num_queries(0):
        for i in range(1, 20):
            assert automation.post(URL, {"customer_id": f"c-{i}"}, format="json").status_code == 200


def test_a_trimmed_id_and_a_number_answer_as_the_action_does(automation):
    spaced = automation.post(URL, {"customer_id": "  c-7 "}, format="json").json()
    assert spaced == automation.post(URL, {"customer_id": "c-7"}, format="json").json()
    number = automation.post(URL, {"customer_id": 42}, format="json")
    assert number.status_code == 200
    assert number.json() == automation.post(URL, {"customer_id": "42"}, format="json").json()


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"customer_id": ["This field is required."]}),
        ({"customer_id": ""}, {"customer_id": ["This field may not be blank."]}),
        ({"customer_id": "   "}, {"customer_id": ["This field may not be blank."]}),
        ({"customer_id": None}, {"customer_id": ["This field may not be null."]}),
        (
            {"customer_id": "x" * 129},
            {"customer_id": ["Ensure this field has no more than 128 characters."]},
        ),
        ({"customer_id": ["c-1"]}, {"customer_id": ["Not a valid string."]}),
    ],
)
def test_invalid_input_gets_the_actions_field_errors(automation, body, errors):
    response = automation.post(URL, body, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid",
        "message": "Invalid input.",
        "extra": {"fields": errors},
    }


@pytest.mark.parametrize(
    "raw",
    [
        b'{"customer_id": NaN}',
        b"{not json",
        b'["c-1"]',
        b'{"customer_id": "c-1", "note": "\\u0000"}',
        b'{"customer_id": "c-\\ud800"}',
    ],
)
def test_a_body_that_is_no_json_object_is_refused_as_before(automation, raw):
    response = automation.post(URL, raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] in ("parse_error", "invalid")


def test_keys_and_scopes_are_checked_as_before(automation):
    _, read_only = api_key_create(name="reader", scopes=["experiments:read"])
    denied = keyed_client(read_only).post(URL, {"customer_id": "c"}, format="json")
    assert denied.status_code == 403
    assert denied.json()["message"] == "This API key lacks the scope 'experiments:assign'."
    wrong = keyed_client("nope.nope").post(URL, {"customer_id": "c"}, format="json")
    assert wrong.status_code == 401
    assert wrong["WWW-Authenticate"] == "Api-Key"
    assert APIClient().post(URL, {"customer_id": "c"}, format="json").status_code == 401
    assert (
        automation.post(
            "/api/v1/experiments/nope/assign", {"customer_id": "c"}, format="json"
        ).json()["code"]
        == "experiment_not_found"
    )


def test_a_revoked_key_stops_at_once(automation):
    key, raw = api_key_create(name="shop", scopes=["experiments:assign"])
    client = keyed_client(raw)
    assert client.post(URL, {"customer_id": "c-1"}, format="json").status_code == 200
    key.revoked = True
    key.save()  # as the admin saves it: the verified-key cache is cleared
    refused = client.post(URL, {"customer_id": "c-1"}, format="json")
    assert refused.status_code == 401
    assert refused.json()["code"] == "authentication_failed"


def test_the_rate_limit_counts_each_call_once_in_the_assignment_round_trip(automation):
    key, raw = api_key_create(name="limited", scopes=["experiments:assign"])
    key.rate_limit = "3/hour"  # a fixed hourly window: the calls below share one
    key.save()
    client = keyed_client(raw)
    start_of_rate_window(3600)
    buffer = serving.redis_key(serving.EXPOSURE_BUFFER)
    statuses = [
        client.post(URL, {"customer_id": f"c-{i}"}, format="json").status_code for i in range(2)
    ]
    statuses.append(client.post(URL, {"customer_id": "c-2"}).status_code)  # the DRF action
    logged = serving.redis_client().llen(buffer)
    statuses += [
        client.post(URL, {"customer_id": f"c-{i}"}, format="json").status_code for i in (3, 4)
    ]
    assert statuses == [200, 200, 200, 429, 429]
    quota = counter_quota(caller=f"key:{key.pk}", rate="3/hour", now=time.time())
    assert ApiKeyRateThrottle.scope in quota.key
    assert cache._cache.get_client(quota.key).get(quota.key) == b"5"  # one count per call
    refused = client.post(URL, {"customer_id": "c-5"}, format="json")
    assert refused.json()["code"] == "throttled"
    assert 0 < refused.json()["extra"]["retry_after_seconds"] <= 3600
    assert refused["Retry-After"]
    # The refused calls assigned and logged nothing.
    assert serving.redis_client().llen(buffer) == logged
    assert not serving.redis_client().exists(
        serving.redis_key(f"exp:s:{serving._configs['banner'].config.id}:c-5")
    )


def test_without_redis_the_hot_path_still_answers(automation, settings):
    expected = {
        f"c-{i}": automation.post(URL, {"customer_id": f"c-{i}"}, format="json").json()
        for i in range(10)
    }
    serving._configs.clear()
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}
    }
    try:
        answers = {
            f"c-{i}": automation.post(URL, {"customer_id": f"c-{i}"}, format="json").json()
            for i in range(10)
        }
    finally:
        serving.breaker.reset()
    assert answers == expected

"""Strings PostgreSQL cannot store (NUL, unpaired surrogates) are a 400, not a 500; found by
the fuzzer in a customer's attributes. The text "\\u0000" itself is fine."""

import uuid

import pytest
from rest_framework.test import APIClient

from marketing.models import Scope
from marketing.services import api_key_create
from profiles.models import Customer, Event

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    _, raw = api_key_create(name="input", scopes=list(Scope.values))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return client


def _put(api, body: str):
    return api.generic(
        "PUT", "/api/v1/customers/c-1", body.encode(), content_type="application/json"
    )


@pytest.mark.parametrize(
    "body",
    [
        '{"attributes": {"note": "a\\u0000b"}}',
        '{"attributes": {"a\\u0000": 1}}',
        '{"attributes": {"nested": [{"x": "\\ud800"}]}}',
        '{"attributes": {"x": "\\uDFFF"}}',
    ],
)
def test_unstorable_strings_in_customer_attributes_are_400(api, body):
    response = _put(api, body)
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert not Customer.objects.filter(external_id="c-1").exists()


def test_escaped_backslash_u0000_and_paired_surrogates_are_stored(api):
    response = _put(api, '{"attributes": {"path": "C:\\\\u0000", "emoji": "\\ud83d\\ude00"}}')
    assert response.status_code == 201, response.content
    stored = Customer.objects.get(external_id="c-1").attributes
    assert stored == {"path": "C:\\u0000", "emoji": "\U0001f600"}


def test_nul_in_event_properties_is_400_and_nothing_is_stored(api):
    body = (
        f'[{{"event_id": "{uuid.uuid4()}", "customer_id": "c-2", "type": "view", '
        '"properties": {"q": "\\u0000"}}]'
    )
    response = api.generic("POST", "/api/v1/events", body.encode(), content_type="application/json")
    assert response.status_code == 400
    assert not Event.objects.exists()

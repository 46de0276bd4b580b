"""Lost PostgreSQL: pages and the API answer 503 with Retry-After, never a 500 traceback.

A page first touches the database before its view runs (the session and the user loaded
for the login check), so the answer cannot come from the view's exception alone."""

import pytest
from django.db import connections
from django.test import Client

from tests.faults.conftest import free_port


@pytest.fixture
def database_down(django_db_blocker):
    """The default connection pointed at a port nothing listens on, for this test only."""
    connection = connections["default"]
    port = connection.settings_dict["PORT"]
    with django_db_blocker.unblock():
        connection.close()
        connection.settings_dict["PORT"] = str(free_port())
        try:
            yield
        finally:
            connection.close()
            connection.settings_dict["PORT"] = port


def test_a_page_answers_503_when_the_database_is_down(database_down):
    client = Client(raise_request_exception=False)
    client.cookies["sessionid"] = "a" * 32  # a logged-in browser: the session is loaded
    response = client.get("/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response["Content-Type"].startswith("text/html")
    assert b"temporarily unavailable" in response.content


def test_an_api_call_answers_503_json_when_the_database_is_down(database_down):
    client = Client(raise_request_exception=False)
    response = client.get("/api/v1/items", HTTP_AUTHORIZATION="Api-Key abc.def")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["code"] == "database_unavailable"

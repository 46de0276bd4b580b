"""The rank path's customer query doubles as the connection's health check
(selectors_offers._customer_row): a persistent connection that died while idle costs no
failed request, and a live one is not checked with a SELECT 1 first."""

import psycopg
import pytest
from django.db import close_old_connections, connection

from recommender.selectors_offers import customer_for_ranking
from tests.recommender.offers_helpers import profiled_customer

pytestmark = pytest.mark.django_db(transaction=True)


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _terminate(pid: int) -> None:
    params = connection.get_connection_params()
    with psycopg.connect(
        dbname=params["dbname"],
        user=params.get("user"),
        password=params.get("password"),
        host=params.get("host"),
        port=params.get("port"),
        autocommit=True,
    ) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def _new_request() -> None:
    """What Django does at a request's start: the health check is due again."""
    close_old_connections()
    assert connection.health_check_done is False


@pytest.fixture
def health_checks(settings):
    connection.settings_dict["CONN_HEALTH_CHECKS"] = True
    connection.settings_dict["CONN_MAX_AGE"] = 60
    yield
    connection.close()


def test_a_connection_killed_while_idle_is_replaced_without_an_error(health_checks):
    customer = profiled_customer(external_id="cust-a")
    dead = _backend_pid()
    _terminate(dead)
    _new_request()

    ranked = customer_for_ranking(external_id="cust-a")

    assert ranked.pk == customer.pk
    assert ranked.features["orders"] == 3
    assert _backend_pid() != dead


def test_a_live_connection_is_reused_without_a_select_1_first(health_checks, monkeypatch):
    profiled_customer(external_id="cust-a")
    pid = _backend_pid()
    _new_request()
    checks = []
    is_usable = connection.is_usable
    monkeypatch.setattr(connection, "is_usable", lambda: checks.append(1) or is_usable())

    assert customer_for_ranking(external_id="cust-a").pk is not None
    assert checks == []
    assert connection.health_check_done is True
    assert _backend_pid() == pid


def test_unknown_customer_after_a_dead_connection(health_checks):
    dead = _backend_pid()
    _terminate(dead)
    _new_request()

    ranked = customer_for_ranking(external_id="nobody")

    assert ranked.pk is None
    assert ranked.features == {"new": True}

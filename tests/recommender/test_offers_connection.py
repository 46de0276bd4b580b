"""The rank path's customer query doubles as the connection's health check
(marketing.common.prepared.fetchone_prepared_as_health_check): a persistent connection that
died while idle costs no failed request, and a live one is not checked with a SELECT 1 first.
The query is a server-side prepared statement (fetchone_prepared): the same row as Django's
client-side cursor, prepared once per connection, re-prepared on a new one."""

import datetime as dt

import psycopg
import pytest
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from marketing.common.prepared import fetchone_prepared_as_health_check
from profiles.models import Consent, ConsentPurpose, CustomerAlias
from recommender.selectors_offers import _CUSTOMER_SQL, customer_for_ranking
from tests.profiles.factories import CustomerFactory, SegmentFactory
from tests.recommender.offers_helpers import profiled_customer

pytestmark = pytest.mark.django_db(transaction=True)


def _customer_row(params: dict) -> tuple | None:
    return fetchone_prepared_as_health_check(_CUSTOMER_SQL, params)


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


def _client_side_row(params: dict) -> tuple | None:
    """The row as the query returned it before it was prepared: Django's own cursor."""
    with connection.cursor() as cursor:
        cursor.execute(_CUSTOMER_SQL, params)
        return cursor.fetchone()


def _prepared_customer_statements() -> list[tuple]:
    """The customer query's prepared statements on this connection, with how many times
    each ran (every execution of a prepared statement uses a generic or a custom plan)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, generic_plans + custom_plans FROM pg_prepared_statements"
            " WHERE statement LIKE '%%profiles_customeralias%%'"
        )
        return cursor.fetchall()


@pytest.fixture
def customers():
    segment = SegmentFactory()
    profiled = profiled_customer(external_id="cust-a", segments=[segment])
    CustomerAlias.objects.create(alias="cookie-1", customer=profiled)
    refused = profiled_customer(external_id="cust-refused")
    Consent.objects.filter(customer=refused).update(granted=False)
    bare = CustomerFactory(external_id="cust-bare")
    Consent.objects.create(
        customer=bare,
        purpose="personalization",
        granted=True,
        source="api",
        changed_at=timezone.now() - dt.timedelta(days=1),
    )
    return {"profiled": profiled, "segment": segment, "refused": refused, "bare": bare}


@pytest.mark.parametrize(
    "external_id", ["cust-a", "cookie-1", "nobody", "cust-refused", "cust-bare"]
)
def test_the_prepared_query_returns_the_row_of_the_client_side_one(customers, external_id):
    params = {"id": external_id, "purpose": ConsentPurpose.PERSONALIZATION}

    assert _customer_row(params) == _client_side_row(params)


def test_ranking_customer_by_external_id_and_by_alias(customers):
    profiled, segment = customers["profiled"], customers["segment"]

    for external_id in ("cust-a", "cookie-1"):
        ranked = customer_for_ranking(external_id=external_id)

        assert ranked.pk == profiled.pk
        assert ranked.segments == frozenset({segment.pk})
        assert ranked.features["orders"] == 3
        assert ranked.features["revenue"] == 120.0
        assert ranked.features["top_categories"] == ["shoes", "books"]
        assert ranked.features["category_affinity"] == {"shoes": 0.75, "books": 0.25}
        assert ranked.features["segments"] == [segment.pk]
        assert ranked.features["id"] == str(profiled.pk)
        assert 2.99 < ranked.features["recency_days"] < 3.01


def test_ranking_customer_unknown_without_consent_and_without_features(customers):
    unknown = customer_for_ranking(external_id="nobody")
    refused = customer_for_ranking(external_id="cust-refused")
    bare = customer_for_ranking(external_id="cust-bare")

    assert (unknown.pk, unknown.features, unknown.segments) == (None, {"new": True}, frozenset())
    assert (refused.pk, refused.features, refused.segments) == (
        customers["refused"].pk,
        {"anonymous": True},
        frozenset(),
    )
    assert (bare.pk, bare.features, bare.segments) == (
        customers["bare"].pk,
        {"segments": [], "new": True, "id": str(customers["bare"].pk)},
        frozenset(),
    )


def test_the_features_state_arrives_as_jsonb_text(customers):
    """Django's adapters load jsonb as text on any cursor of its connection, the prepared
    one too: customer_for_ranking parses it (it would take a dict as it is)."""
    _, state, _, _ = _customer_row({"id": "cust-a", "purpose": ConsentPurpose.PERSONALIZATION})

    assert isinstance(state, str)


def test_the_query_is_prepared_once_per_connection(health_checks, customers):
    for external_id in ("cust-a", "cookie-1", "nobody", "cust-refused", "cust-a", "cust-bare"):
        customer_for_ranking(external_id=external_id)

    [(name, executions)] = _prepared_customer_statements()
    assert name.startswith("_pg3_")
    assert executions == 6


def test_the_query_is_still_counted_by_djangos_query_log(customers, django_assert_num_queries):
    """Counted and timed like any query, with its parameters; its text is not logged (None):
    psycopg keeps no query text for a prepared execution, where Django looks for it."""
    with django_assert_num_queries(1) as captured:
        customer_for_ranking(external_id="cust-a")

    [query] = captured.captured_queries
    assert query["sql"] is None


def test_a_connection_closed_under_a_prepared_query_is_replaced(health_checks, customers):
    customer_for_ranking(external_id="cust-a")
    dead = _backend_pid()
    connection.connection.close()
    _new_request()

    ranked = customer_for_ranking(external_id="cust-a")

    assert ranked.pk == customers["profiled"].pk
    assert ranked.features["orders"] == 3
    assert _backend_pid() != dead
    assert [n for _, n in _prepared_customer_statements()] == [1]


def test_a_connection_killed_after_preparing_is_replaced(health_checks, customers):
    customer_for_ranking(external_id="cust-a")
    assert [n for _, n in _prepared_customer_statements()] == [1]
    dead = _backend_pid()
    _terminate(dead)
    _new_request()

    ranked = customer_for_ranking(external_id="cookie-1")

    assert ranked.pk == customers["profiled"].pk
    assert _backend_pid() != dead
    assert [n for _, n in _prepared_customer_statements()] == [1]


def _rank_in_a_transaction_that_fails() -> None:
    try:
        with transaction.atomic():
            customer_for_ranking(external_id="cust-a")
            raise RuntimeError("the view failed")
    except RuntimeError:
        pass


def test_a_rolled_back_transaction_drops_the_statement_and_it_is_prepared_again(
    health_checks, customers
):
    """psycopg deallocates its prepared statements on a ROLLBACK (DEALLOCATE ALL) and
    forgets them: the next call prepares the query again instead of executing a statement
    that no longer exists."""
    customer_for_ranking(external_id="cust-a")
    _rank_in_a_transaction_that_fails()
    assert _prepared_customer_statements() == []

    assert customer_for_ranking(external_id="cust-a").pk == customers["profiled"].pk
    assert [n for _, n in _prepared_customer_statements()] == [1]

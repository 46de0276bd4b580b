import uuid

import pytest
from django.core.management import call_command
from django.db import connection

from profiles.consent import (
    consent_filter,
    consent_reachable_endpoints,
    consent_set,
    consent_withdraw_by_token,
    unsubscribe_token,
)
from profiles.models import (
    ChannelEndpoint,
    Consent,
    ConsentChange,
    Customer,
    CustomerFeatures,
    Erasure,
    Event,
)
from profiles.privacy import (
    customer_erase,
    privacy_erase_register,
    privacy_erase_unregister,
    privacy_export,
)
from profiles.services import features_update_pending

EMAIL = "zelda.quark-7731@example.org"
PHONE = "+4915550009931"
FIRST, LAST = "Zelda", "Quarkenbusch"


@pytest.fixture
def person(db, storefront_client):
    customer = Customer.objects.create(
        external_id="p-1",
        email=EMAIL,
        phone=PHONE,
        first_name=FIRST,
        last_name=LAST,
        attributes={"nickname": f"{FIRST} Q"},
    )
    ChannelEndpoint.objects.create(customer=customer, channel="email", address=EMAIL)
    ChannelEndpoint.objects.create(customer=customer, channel="sms", address=PHONE)
    consent_set(customer=customer, purpose="marketing_email", granted=True, source="ui", actor="m")
    storefront_client.post(
        "/api/v1/events",
        [
            {
                "event_id": str(uuid.uuid4()),
                "customer_id": "p-1",
                "type": "purchase",
                "value": 20,
                "properties": {"shipping_name": f"{FIRST} {LAST}", "email": EMAIL},
            },
            {"event_id": str(uuid.uuid4()), "customer_id": "p-1", "type": "view"},
        ],
        format="json",
    )
    features_update_pending()
    return customer


def test_missing_consent_means_no(person):
    other = Customer.objects.create(external_id="p-2")
    assert consent_filter(customer_ids=[person.pk, other.pk], purpose="marketing_email") == {
        person.pk
    }
    assert consent_filter(customer_ids=[person.pk], purpose="sms") == set()


def test_reachable_endpoints_need_consent_and_no_opt_out(person):
    assert [
        e.address for e in consent_reachable_endpoints(customer_ids=[person.pk], channel="email")
    ] == [EMAIL]
    assert list(consent_reachable_endpoints(customer_ids=[person.pk], channel="sms")) == []
    ChannelEndpoint.objects.filter(channel="email").update(opted_out=True)
    assert list(consent_reachable_endpoints(customer_ids=[person.pk], channel="email")) == []


def test_consent_changes_are_audited_and_repeats_are_no_ops(person):
    consent_set(customer=person, purpose="sms", granted=True, source="api", actor="k")
    consent_set(customer=person, purpose="sms", granted=True, source="api", actor="k")
    consent_set(customer=person, purpose="sms", granted=False, source="webhook", actor="twilio")
    trail = list(
        ConsentChange.objects.filter(customer=person, purpose="sms")
        .order_by("pk")
        .values_list("granted", "source", "actor")
    )
    assert trail == [(True, "api", "k"), (False, "webhook", "twilio")]


def test_unsubscribe_token_withdraws_consent(person):
    token = unsubscribe_token(customer=person, purpose="marketing_email")
    consent_withdraw_by_token(token=token)
    consent = Consent.objects.get(customer=person, purpose="marketing_email")
    assert (consent.granted, consent.source) == (False, "unsubscribe_link")


def test_unsubscribe_event_withdraws_consent(person, storefront_client):
    storefront_client.post(
        "/api/v1/events",
        {
            "event_id": str(uuid.uuid4()),
            "customer_id": "p-1",
            "type": "unsubscribe",
            "channel": "email",
        },
        format="json",
    )
    assert Consent.objects.get(customer=person, purpose="marketing_email").granted is False


def test_consent_api(person, storefront_client):
    url = "/api/v1/customers/p-1/consents"
    response = storefront_client.post(url, {"purpose": "sms", "granted": True}, format="json")
    assert response.status_code == 200
    assert [(c["purpose"], c["granted"], c["source"]) for c in response.json()] == [
        ("marketing_email", True, "ui"),
        ("sms", True, "api"),
    ]
    bad = storefront_client.post(url, {"purpose": "telepathy", "granted": True}, format="json")
    assert bad.status_code == 400
    assert "purpose" in bad.json()["extra"]["fields"]
    assert ConsentChange.objects.filter(customer=person).count() == 2


def test_export_holds_everything(person, storefront_client):
    data = privacy_export(customer=person)
    assert data["customer"]["email"] == EMAIL
    assert {e["channel"] for e in data["endpoints"]} == {"email", "sms"}
    assert [e["type"] for e in data["events"]] == ["purchase", "view"]
    assert data["consents"][0]["purpose"] == "marketing_email"
    assert data["features"]["orders"] == 1
    response = storefront_client.get("/api/v1/customers/p-1/export")
    assert response.status_code == 200
    assert response.json()["customer"]["phone"] == PHONE


def test_export_command_prints_json(person, capsys):
    import json

    call_command("export_customer", "p-1")
    data = json.loads(capsys.readouterr().out)
    assert data["customer"]["last_name"] == LAST


def _tables_containing(value: str) -> list[str]:
    """Every text, varchar and jsonb column of every table, searched for `value`."""
    hits = []
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT table_name, column_name FROM information_schema.columns
            WHERE table_schema = 'public'
              AND data_type IN ('text', 'character varying', 'jsonb', 'json')
            """
        )
        for table, column in cursor.fetchall():
            cursor.execute(
                f'SELECT count(*) FROM "{table}" WHERE "{column}"::text ILIKE %s',  # noqa: S608
                [f"%{value}%"],
            )
            if cursor.fetchone()[0]:
                hits.append(f"{table}.{column}")
    return hits


def test_erasure_leaves_no_trace_of_the_person(person, storefront_client):
    assert "profiles_customer.email" in _tables_containing(EMAIL)
    response = storefront_client.delete("/api/v1/customers/p-1")
    assert response.status_code == 200
    body = response.json()
    assert body["removed"]["events"] == 2
    assert body["removed"]["endpoints"] == 2
    for value in (EMAIL, PHONE, FIRST, LAST, "p-1"):
        assert _tables_containing(value) == [], value
    erased = Customer.objects.get(pk=person.pk)
    assert erased.external_id == body["pseudonym"]
    assert erased.erased_at is not None
    assert Event.objects.filter(customer=erased).count() == 0
    features = CustomerFeatures.objects.get(customer=erased)
    assert (features.state["orders"], features.state["revenue"]) == (1, 20.0)
    assert Erasure.objects.get().removed["events"] == 2
    assert storefront_client.get("/api/v1/customers/p-1").status_code == 404


@pytest.fixture
def failing_erase_part():
    def broken(customer):
        raise RuntimeError("downstream store unavailable")

    privacy_erase_register("zz_broken", broken)
    yield
    privacy_erase_unregister("zz_broken")


def test_erasure_is_all_or_nothing(person, failing_erase_part):
    with pytest.raises(RuntimeError):
        customer_erase(customer=person, source="test")
    person.refresh_from_db()
    assert person.email == EMAIL
    assert Event.objects.filter(customer=person).count() == 2
    assert Erasure.objects.count() == 0


def test_erase_command(person, capsys):
    call_command("erase_customer", "p-1", "--yes")
    assert "erased" in capsys.readouterr().out
    assert not Customer.objects.filter(email=EMAIL).exists()

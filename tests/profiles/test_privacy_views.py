import uuid

import pytest
from django.urls import reverse
from django.utils import timezone

from profiles.consent import unsubscribe_token
from profiles.ingest import events_validate
from profiles.models import Consent, ConsentChange, Customer, Erasure
from profiles.services import events_ingest, features_update_pending


@pytest.fixture
def customer(db):
    customer = Customer.objects.create(external_id="cust-9", email="nine@example.com")
    events_ingest(
        rows=events_validate(
            [
                {
                    "event_id": str(uuid.uuid4()),
                    "customer_id": "cust-9",
                    "type": "purchase",
                    "value": 42,
                },
                {
                    "event_id": str(uuid.uuid4()),
                    "customer_id": "cust-9",
                    "type": "view",
                    "channel": "app",
                },
            ],
            now=timezone.now(),
        )
    )
    features_update_pending()
    return customer


def test_profile_page_shows_features_and_consent(marketer_client, customer):
    response = marketer_client.get(reverse("profiles:customer-detail", args=[customer.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "1 orders" in html
    assert "42.0" in html
    assert "Marketing email" in html
    assert "not given" in html
    assert "Erase personal data" in html


def test_analyst_sees_no_consent_or_erase_controls(analyst_client, customer):
    html = analyst_client.get(
        reverse("profiles:customer-detail", args=[customer.pk])
    ).content.decode()
    assert "Erase personal data" not in html
    assert ">Grant<" not in html
    response = analyst_client.post(
        reverse("profiles:customer-consent", args=[customer.pk]),
        {"purpose": "sms", "granted": "1"},
    )
    assert response.status_code == 403
    assert not Consent.objects.exists()


def test_marketer_grants_and_withdraws_consent_in_the_page(marketer_client, customer):
    url = reverse("profiles:customer-consent", args=[customer.pk])
    response = marketer_client.post(url, {"purpose": "sms", "granted": "1"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert 'id="consent-panel"' in response.content.decode()
    assert "<nav" not in response.content.decode()
    marketer_client.post(url, {"purpose": "sms", "granted": "0"}, HTTP_HX_REQUEST="true")
    trail = list(ConsentChange.objects.order_by("pk").values_list("granted", "source", "actor"))
    assert trail == [(True, "ui", "user:mara"), (False, "ui", "user:mara")]


def test_export_download(marketer_client, customer):
    response = marketer_client.get(reverse("profiles:customer-export", args=[customer.pk]))
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="customer-{customer.pk}.json"'
    assert response.json()["customer"]["email"] == "nine@example.com"
    assert len(response.json()["events"]) == 2


def test_erase_needs_the_id_typed(marketer_client, customer):
    url = reverse("profiles:customer-erase", args=[customer.pk])
    wrong = marketer_client.post(url, {"confirm": "nope"}, HTTP_HX_REQUEST="true")
    assert wrong.status_code == 200
    assert "Type the customer&#x27;s id exactly" in wrong.content.decode()
    assert Erasure.objects.count() == 0
    right = marketer_client.post(url, {"confirm": "cust-9"}, HTTP_HX_REQUEST="true")
    assert right["HX-Redirect"] == reverse("profiles:customer-list")
    customer.refresh_from_db()
    assert customer.email == ""
    assert Erasure.objects.get().source == "ui"


def test_unsubscribe_link_is_public_and_withdraws(client, customer):
    from profiles.consent import consent_set

    consent_set(customer=customer, purpose="marketing_email", granted=True, source="ui")
    url = reverse(
        "profiles:unsubscribe",
        args=[unsubscribe_token(customer=customer, purpose="marketing_email")],
    )
    page = client.get(url)
    assert page.status_code == 200
    assert "Stop receiving marketing email?" in page.content.decode()
    assert Consent.objects.get(purpose="marketing_email").granted is True
    done = client.post(url)
    assert "You are unsubscribed" in done.content.decode()
    assert Consent.objects.get(purpose="marketing_email").granted is False


def test_tampered_unsubscribe_link_is_refused(client, customer):
    response = client.post(reverse("profiles:unsubscribe", args=["abc.def"]))
    assert response.status_code == 400
    assert not Consent.objects.exists()

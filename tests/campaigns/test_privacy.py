"""A customer's messages in profiles' export and erasure (campaigns registers its part)."""

import pytest
from django.utils import timezone

from campaigns.models import Message
from profiles.privacy import customer_erase, privacy_export
from tests.campaigns.factories import CampaignFactory
from tests.profiles.factories import CustomerFactory
from tests.profiles.test_privacy import _tables_containing

pytestmark = pytest.mark.django_db


ADA_EMAIL = "ada@example.com"


@pytest.fixture
def ada():
    customer = CustomerFactory(external_id="ada-1", first_name="Adelheid", email=ADA_EMAIL)
    content = {"title": "Hi Adelheid", "body": "For you", "url": "", "icon": ""}
    for channel, address, payload in [("email", ADA_EMAIL, {}), ("in_app", "app", content)]:
        Message.objects.create(
            campaign=CampaignFactory(name=f"Spring {channel}", channel=channel),
            customer=customer,
            channel=channel,
            address=address,
            idempotency_key=f"{channel}:{customer.pk}",
            status="sent",
            sent_at=timezone.now(),
            payload=payload,
        )
    return customer


def test_export_lists_the_customers_messages_with_what_was_shown(ada):
    exported = privacy_export(customer=ada)["campaigns"]["messages"]

    assert [(m["campaign__name"], m["channel"], m["address"]) for m in exported] == [
        ("Spring email", "email", "ada@example.com"),
        ("Spring in_app", "in_app", "app"),
    ]
    assert exported[1]["payload"]["title"] == "Hi Adelheid"


def test_erasure_blanks_addresses_and_content_and_keeps_the_rows(ada, storefront_client):
    erasure = customer_erase(customer=ada, source="test")

    assert erasure.removed["messages"] == 2
    assert list(Message.objects.order_by("pk").values_list("address", "payload", "status")) == [
        ("", {}, "sent"),
        ("", {}, "sent"),
    ]
    for value in ("Adelheid", "ada@example.com", "ada-1"):
        assert _tables_containing(value) == [], value

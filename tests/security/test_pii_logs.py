"""No email address or phone number in any log record, while customers are identified,
events ingested and a campaign sent by email and SMS (to the stand-in providers, including
a provider refusing an address), and storefronts send contact details as ids."""

import logging
import uuid

import pytest
from rest_framework.test import APIClient

from campaigns.dispatch import messages_send_batch
from marketing.common.logging import pii_mask
from marketing.models import Scope
from marketing.services import api_key_create
from profiles.models import ChannelEndpoint, Consent, Customer
from profiles.segments.services import segment_create_static
from tests.campaigns.factories import CampaignFactory, MessageTemplateFactory

pytestmark = pytest.mark.django_db

EMAILS = [f"pii.person{i}@shop-example.com" for i in range(3)]
PHONES = ["+4915112345670", "+4915112345671", "+4915112345672"]


@pytest.fixture
def api():
    _, raw = api_key_create(name="pii", scopes=list(Scope.values))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return client


def _leaks(records: list[logging.LogRecord]) -> list[str]:
    secrets = EMAILS + PHONES + [p.replace("+", "%2B") for p in PHONES]
    standard = set(vars(logging.makeLogRecord({})))
    leaks = []
    for record in records:
        texts = [record.getMessage()]
        # Structured fields, as a JSON formatter would write them (Django's `request` object
        # on django.request records is not text our formatter writes).
        texts += [
            repr(v)
            for k, v in vars(record).items()
            if k not in standard and isinstance(v, str | int | float | list | dict | tuple)
        ]
        if record.exc_info and record.exc_info[1] is not None:
            texts.append(repr(record.exc_info[1]))
        leaks += [f"{record.name}: {t[:200]}" for t in texts if any(s in t for s in secrets)]
    return leaks


def test_pii_mask_hides_emails_phone_numbers_and_credentials():
    assert pii_mask("to ada.l+x@shop.example.com, +49 151 1234 5678") == "to [email], [phone]"
    assert (
        pii_mask("{'Authorization': 'Bearer SG.abc-1'}") == "{'Authorization': 'Bearer [secret]'}"
    )
    assert pii_mask("customer 12345678 at 2026-12-02 06:16:55") == (
        "customer 12345678 at 2026-12-02 06:16:55"
    )


def test_no_contact_details_in_logs(api, caplog, sendgrid_stand_in, twilio_stand_in):
    caplog.set_level(logging.DEBUG)
    for i, (email, phone) in enumerate(zip(EMAILS, PHONES, strict=True)):
        response = api.put(
            f"/api/v1/customers/pii-{i}",
            {
                "email": email,
                "phone": phone,
                "endpoints": [
                    {"channel": "email", "address": email},
                    {"channel": "sms", "address": phone},
                ],
            },
            format="json",
        )
        assert response.status_code == 201, response.content
    events = [
        {
            "event_id": str(uuid.uuid4()),
            "customer_id": "pii-0",
            "type": "view",
            "item_id": "sku-1",
            "properties": {"email": EMAILS[0], "phone": PHONES[0]},
        },
        {"event_id": str(uuid.uuid4()), "customer_id": EMAILS[1], "type": "view"},
        {"event_id": "not-a-uuid", "customer_id": EMAILS[2], "type": "view"},
    ]
    api.post("/api/v1/events", events[:2], format="json")
    api.post("/api/v1/events", events[2:], format="json")
    # A storefront using contact details as ids: Django logs the 404's path.
    assert api.get(f"/api/v1/customers/{EMAILS[2]}").status_code == 404
    assert api.get(f"/api/v1/customers/{PHONES[2]}").status_code == 404

    customers = list(Customer.objects.filter(external_id__startswith="pii-"))
    for customer in customers:
        for purpose in ("marketing_email", "sms"):
            Consent.objects.create(
                customer=customer,
                purpose=purpose,
                granted=True,
                source="api",
                changed_at=customer.created_at,
            )
    assert ChannelEndpoint.objects.filter(customer__in=customers).count() == 6
    segment = segment_create_static(
        name="PII audience", kind="imported", customer_ids=[c.pk for c in customers]
    )
    sendgrid_stand_in.fail_next(1, 400)
    twilio_stand_in.fail_next(1, 400)
    for channel in ("email", "sms"):
        campaign = CampaignFactory(
            name=f"PII {channel}",
            channel=channel,
            segment=segment,
            status="sending",
            template=MessageTemplateFactory(channel=channel, body="Hi {{ customer.email }}"),
        )
        messages_send_batch(campaign=campaign, customer_ids=[c.pk for c in customers])
    assert sendgrid_stand_in.count >= 3
    assert twilio_stand_in.count >= 3

    assert len(caplog.records) > 5
    assert _leaks(caplog.records) == []
    assert not [r for r in caplog.records if "SG.test-key" in r.getMessage()]

"""A provider answering 500, rate-limiting or timing out (issue #11, faults): retries with
backoff, then the message is `failed` and counted as failed in the campaign report and on its
page. Dispatch's own rules (ambiguous errors never resent blindly, 429 retried, permanent
errors) are tested in tests/campaigns/test_dispatch.py; this adds the end of the story."""

import json
import time
import uuid
from datetime import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.dispatch import LOST_ERROR, MAX_SEND_ATTEMPTS, message_send, messages_send_batch
from campaigns.models import Campaign, Message
from campaigns.selectors import campaign_report
from marketing.celery import app as celery_app
from profiles.consent import CHANNEL_PURPOSE
from profiles.models import ChannelEndpoint, Consent
from profiles.segments.services import segment_create_static
from tests.campaigns.factories import CampaignFactory, emailable_customer

pytestmark = pytest.mark.django_db


def _campaign(n: int, **fields) -> tuple[Campaign, list[int]]:
    customers = [
        emailable_customer(external_id=f"pf-{i}", email=f"pf-{i}@example.com") for i in range(n)
    ]
    for i, customer in enumerate(customers):  # reachable by SMS too
        ChannelEndpoint.objects.create(customer=customer, channel="sms", address=f"+1555000{i:04}")
        Consent.objects.create(
            customer=customer,
            purpose=CHANNEL_PURPOSE["sms"],
            granted=True,
            source="api",
            changed_at=timezone.now(),
        )
    pks = [c.pk for c in customers]
    segment = segment_create_static(
        name=f"Audience {uuid.uuid4().hex[:6]}", kind="imported", customer_ids=pks
    )
    return CampaignFactory(segment=segment, status="sending", **fields), pks


def _retry_countdowns() -> list[float]:
    """Seconds from now to the ETA of each message_send waiting in the email queue."""
    with celery_app.connection_for_write() as conn:
        raw = conn.default_channel.client.lrange("email", 0, -1)
        conn.default_channel.client.delete("email")
    now = time.time()
    countdowns = []
    for entry in raw:
        headers = json.loads(entry)["headers"]
        assert headers["task"] == "campaigns.message_send"
        eta = headers["eta"]
        countdowns.append(datetime.fromisoformat(eta).timestamp() - now if eta else 0.0)
    return countdowns


def test_rate_limited_sends_back_off_then_fail_and_the_report_counts_them(
    sendgrid_stand_in, marketer_client
):
    campaign, pks = _campaign(1)
    sendgrid_stand_in.fail_next(99, 429)  # no Retry-After: exponential backoff with jitter
    with celery_app.connection_for_write() as conn:
        conn.default_channel.client.delete("email")

    messages_send_batch(campaign=campaign, customer_ids=pks)
    message = Message.objects.get(campaign=campaign)
    waits = [_retry_countdowns()]
    statuses = []
    for _ in range(MAX_SEND_ATTEMPTS - 1):
        statuses.append(message_send(message_id=message.pk))
        waits.append(_retry_countdowns())

    assert statuses == ["queued"] * (MAX_SEND_ATTEMPTS - 2) + ["failed"]
    # Retry n waits up to 2 * 2^(n-1) s (full jitter): the ceiling doubles each time.
    for attempt, countdowns in enumerate(waits[:-1], start=1):
        assert len(countdowns) == 1
        assert -1 <= countdowns[0] <= 2 * 2 ** (attempt - 1) + 1
    assert waits[-1] == []  # given up: nothing more enqueued
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("failed", MAX_SEND_ATTEMPTS)
    assert message.error.startswith("gave up")
    assert len(sendgrid_stand_in.requests) == MAX_SEND_ATTEMPTS
    report = campaign_report(campaign=campaign)
    assert (report.total.sent, report.total.failed) == (0, 1)
    page = marketer_client.get(reverse("campaigns:campaign-report", args=[campaign.pk]))
    assert page.status_code == 200
    assert page.context["report"].total.failed == 1


def test_sendgrid_answering_500_is_settled_by_lookup_resent_and_then_failed(
    sendgrid_stand_in, settings
):
    campaign, pks = _campaign(2)
    sendgrid_stand_in.fail_next(99, 500)
    settings.MESSAGE_SEND_LEASE_SECONDS = 0  # each retry settles the claim at once

    messages_send_batch(campaign=campaign, customer_ids=pks)
    statuses = {
        m.pk: [message_send(message_id=m.pk) for _ in range(MAX_SEND_ATTEMPTS + 1)]
        for m in Message.objects.filter(campaign=campaign)
    }

    for history in statuses.values():
        assert history[-1] == "failed"
    rows = list(Message.objects.filter(campaign=campaign).values_list("status", "attempts"))
    assert rows == [("failed", MAX_SEND_ATTEMPTS)] * 2
    report = campaign_report(campaign=campaign)
    assert (report.total.sent, report.total.failed) == (0, 2)


def test_twilio_timing_out_ends_failed_never_resent(twilio_stand_in, settings):
    """Twilio cannot be asked whether it took a message: a timeout is at most once."""
    settings.PROVIDER_TIMEOUT_SECONDS = 0.2
    twilio_stand_in.delay = 0.5
    campaign, pks = _campaign(1, channel="sms")

    messages_send_batch(campaign=campaign, customer_ids=pks)
    message = Message.objects.get(campaign=campaign)
    assert message.status == "sending"  # in doubt
    settings.MESSAGE_SEND_LEASE_SECONDS = 0
    twilio_stand_in.delay = 0
    assert message_send(message_id=message.pk) == "failed"

    message.refresh_from_db()
    assert (message.status, message.error) == ("failed", LOST_ERROR)
    assert len(twilio_stand_in.requests) == 1
    assert campaign_report(campaign=campaign).total.failed == 1

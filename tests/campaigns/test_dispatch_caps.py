"""Frequency caps across campaigns dispatching at the same time: the check and the insert are
atomic per customer (advisory locks), and messages about to be sent count."""

import threading
from collections import Counter

import pytest
from django.db import connection

from campaigns.dispatch import BatchResult, messages_send_batch
from campaigns.models import Message
from profiles.segments.services import segment_create_static
from tests.campaigns.factories import CampaignFactory, emailable_customers

pytestmark = pytest.mark.django_db


def audience(n: int) -> list[int]:
    return emailable_customers(n, prefix="cap")


def sending(pks: list[int], name: str):
    segment = segment_create_static(name=f"Audience {name}", kind="imported", customer_ids=pks)
    return CampaignFactory(name=name, segment=segment, status="sending")


def test_queued_messages_of_another_campaign_count_against_the_cap(sendgrid_stand_in, settings):
    settings.CAMPAIGN_FREQUENCY_CAP = 1
    pks = audience(2)
    first, second = sending(pks, "First"), sending(pks, "Second")
    Message.objects.create(  # waiting for a retry: about to be sent
        campaign=first,
        customer_id=pks[0],
        channel="email",
        idempotency_key=f"{first.pk}:0:{pks[0]}:email",
        status="queued",
    )

    result = messages_send_batch(campaign=second, customer_ids=pks)

    assert result == BatchResult(sent=1, skipped=1)
    capped = Message.objects.get(campaign=second, skip_reason="frequency_cap")
    assert capped.customer_id == pks[0]
    assert len(sendgrid_stand_in.requests) == 1


@pytest.mark.django_db(transaction=True)
def test_two_campaigns_dispatching_the_same_customers_at_once_never_exceed_the_cap(
    sendgrid_stand_in, settings
):
    settings.CAMPAIGN_FREQUENCY_CAP = 1
    pks = audience(60)
    campaigns = [sending(pks, "Left"), sending(pks, "Right")]
    results: list[BatchResult] = []
    start = threading.Barrier(2)

    def run(campaign) -> None:
        try:
            start.wait()
            results.append(messages_send_batch(campaign=campaign.pk, customer_ids=pks))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(c,)) for c in campaigns]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results) == 2
    assert sum(r.sent for r in results) == 60
    assert sum(r.skipped for r in results) == 60
    sent = Counter(Message.objects.filter(status="sent").values_list("customer_id", flat=True))
    assert sent == Counter({pk: 1 for pk in pks})
    recipients = Counter(
        r.json()["personalizations"][0]["to"][0]["email"] for r in sendgrid_stand_in.requests
    )
    assert recipients == Counter({f"cap-{i}@example.com": 1 for i in range(60)})
    skipped = Message.objects.filter(status="skipped").values_list("skip_reason", flat=True)
    assert set(skipped) == {"frequency_cap"}

"""The fan-out cursor (a redelivered page starts no second chain), the audience size stored by
the first page, and the sweeper's cheap activity check (journeys left alone)."""

import datetime as dt
import json
import uuid

import pytest
from django.utils import timezone

from campaigns.fanout import (
    audience_size_get,
    audience_size_store,
    fanout_cursor,
    fanout_page_claim,
    fanout_reset,
)
from campaigns.lifecycle import (
    campaign_dispatch_page,
    campaign_launch,
    campaign_pause,
    campaign_resume,
)
from campaigns.models import Campaign, Message
from campaigns.recovery import SweepResult, campaigns_sweep
from marketing.celery import app as celery_app
from profiles.segments.services import segment_create_static
from tests.campaigns.factories import CampaignFactory, emailable_customers

pytestmark = pytest.mark.django_db

QUEUE = "email"


@pytest.fixture(autouse=True)
def _empty_queue():
    with celery_app.connection_for_write() as conn:
        conn.default_channel.client.delete(QUEUE)


def enqueued() -> list[tuple[str, str]]:
    with celery_app.connection_for_write() as conn:
        raw = conn.default_channel.client.lrange(QUEUE, 0, -1)
    return sorted(
        (json.loads(m)["headers"]["task"], json.loads(m)["headers"]["argsrepr"]) for m in raw
    )


def campaign_of(n: int, **fields) -> tuple[Campaign, list[int]]:
    pks = emailable_customers(n, prefix=f"f{uuid.uuid4().hex[:4]}")
    segment = segment_create_static(
        name=f"Fan-out {uuid.uuid4().hex[:6]}", kind="imported", customer_ids=pks
    )
    return CampaignFactory(segment=segment, **{"status": "sending", **fields}), pks


def test_a_redelivered_page_enqueues_no_second_chain(settings):
    settings.DISPATCH_BATCH_SIZE = 2
    campaign, pks = campaign_of(5)

    assert campaign_dispatch_page(campaign_id=campaign.pk, after_pk=0) == 2
    assert campaign_dispatch_page(campaign_id=campaign.pk, after_pk=0) == 0  # redelivered
    assert campaign_dispatch_page(campaign_id=campaign.pk, after_pk=pks[1]) == 2
    assert campaign_dispatch_page(campaign_id=campaign.pk, after_pk=0) == 0  # late redelivery
    assert campaign_dispatch_page(campaign_id=campaign.pk, after_pk=pks[1]) == 0

    assert enqueued() == sorted(
        [
            ("campaigns.messages_send_batch", f"({campaign.pk}, {pks[:2]})"),
            ("campaigns.campaign_dispatch_page", f"({campaign.pk}, {pks[1]})"),
            ("campaigns.messages_send_batch", f"({campaign.pk}, {pks[2:4]})"),
            ("campaigns.campaign_dispatch_page", f"({campaign.pk}, {pks[3]})"),
        ]
    )
    assert fanout_cursor(campaign_id=campaign.pk) == pks[3]
    assert audience_size_get(campaign_id=campaign.pk) == 5


def test_the_last_empty_page_finishes_once_even_when_redelivered(settings):
    settings.DISPATCH_BATCH_SIZE = 5
    campaign, pks = campaign_of(2)
    campaign_dispatch_page(campaign_id=campaign.pk, after_pk=0)

    assert campaign_dispatch_page(campaign_id=campaign.pk, after_pk=pks[-1]) == 0
    finished_at = Campaign.objects.get(pk=campaign.pk).finished_at
    assert campaign_dispatch_page(campaign_id=campaign.pk, after_pk=pks[-1]) == 0

    campaign.refresh_from_db()
    assert (campaign.status, campaign.finished_at) == ("done", finished_at)


def test_resume_pages_again_from_the_start(settings, django_capture_on_commit_callbacks):
    settings.DISPATCH_BATCH_SIZE = 2
    campaign, pks = campaign_of(3)
    campaign_dispatch_page(campaign_id=campaign.pk, after_pk=0)
    campaign_pause(campaign=campaign)

    with django_capture_on_commit_callbacks(execute=True):
        campaign_resume(campaign=campaign)

    assert fanout_cursor(campaign_id=campaign.pk) == 0
    assert campaign_dispatch_page(campaign_id=campaign.pk, after_pk=0) == 2


def test_the_claim_is_atomic_compare_and_advance():
    assert fanout_page_claim(campaign_id=991, after_pk=0, last_pk=10) is True
    assert fanout_page_claim(campaign_id=991, after_pk=10, last_pk=20) is True
    assert fanout_page_claim(campaign_id=991, after_pk=10, last_pk=20) is False
    assert fanout_page_claim(campaign_id=991, after_pk=5, last_pk=15) is False
    assert fanout_cursor(campaign_id=991) == 20


def sent(campaign: Campaign, pk: int, *, ago: dt.timedelta) -> Message:
    return Message.objects.create(
        campaign=campaign,
        customer_id=pk,
        channel="email",
        idempotency_key=f"{campaign.pk}:0:{pk}:email",
        status="sent",
        sent_at=timezone.now() - ago,
    )


def _stalled(campaign: Campaign) -> None:
    old = timezone.now() - dt.timedelta(minutes=30)
    Campaign.objects.filter(pk=campaign.pk).update(updated_at=old, started_at=old)


def test_sweep_restarts_a_lost_chain_behind_the_cursor(settings):
    """The page after the cursor's claim was lost with its worker: the restart moves the
    cursor back to the last member with a row, so the restarted page is not refused."""
    settings.DISPATCH_BATCH_SIZE = 2
    settings.CAMPAIGN_STALL_SECONDS = 60
    campaign, pks = campaign_of(5)
    fanout_page_claim(campaign_id=campaign.pk, after_pk=0, last_pk=pks[3])
    sent(campaign, pks[0], ago=dt.timedelta(minutes=20))
    _stalled(campaign)
    later = timezone.now() + dt.timedelta(minutes=5)  # the claim's Redis mark is old by then

    result = campaigns_sweep(now=later)

    assert (result.restarted, result.rebatched) == (1, 0)
    assert fanout_cursor(campaign_id=campaign.pk) == pks[0]
    assert ("campaigns.campaign_dispatch_page", f"({campaign.pk}, {pks[0]})") in enqueued()
    assert campaign_dispatch_page(campaign_id=campaign.pk, after_pk=pks[0]) == 2


def test_sweep_leaves_a_campaign_that_sent_recently_and_journeys_alone(settings):
    settings.CAMPAIGN_STALL_SECONDS = 60
    busy, pks = campaign_of(2)
    sent(busy, pks[0], ago=dt.timedelta(seconds=10))
    journey, _ = campaign_of(1, audience_type="trigger", trigger_event_type="purchase")
    for campaign in (busy, journey):
        _stalled(campaign)

    assert campaigns_sweep() == SweepResult()
    assert enqueued() == []
    assert Campaign.objects.get(pk=journey.pk).updated_at < timezone.now() - dt.timedelta(
        minutes=29
    )


def test_a_launch_ignores_fan_out_keys_left_by_an_earlier_campaign_with_its_id(
    settings, django_capture_on_commit_callbacks
):
    """A database recreated while Redis kept its keys gives a new campaign an old id: its
    launch must not find the old cursor past its first page, nor the old audience size."""
    settings.DISPATCH_BATCH_SIZE = 2
    campaign, pks = campaign_of(3, status="draft")
    fanout_reset(campaign_id=campaign.pk, to_pk=10**9)  # the earlier campaign got that far
    audience_size_store(campaign_id=campaign.pk, size=999)

    with django_capture_on_commit_callbacks(execute=True):
        campaign_launch(campaign=campaign)

    assert fanout_cursor(campaign_id=campaign.pk) == 0
    assert audience_size_get(campaign_id=campaign.pk) is None
    assert campaign_dispatch_page(campaign_id=campaign.pk, after_pk=0) == 2
    assert audience_size_get(campaign_id=campaign.pk) == 3

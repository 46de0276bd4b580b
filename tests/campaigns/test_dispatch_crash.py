"""Crash safety of dispatch: stale claims settled with the provider, the sweeper, and a real
Celery worker killed with SIGKILL in the middle of a campaign, then restarted."""

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from campaigns.dispatch import LOST_ERROR, messages_resolve_stale
from campaigns.lifecycle import campaign_launch
from campaigns.models import Campaign, Message
from campaigns.recovery import SweepResult, campaigns_sweep
from marketing.celery import app as celery_app
from profiles.segments.services import segment_create_static
from tests.campaigns.factories import CampaignFactory, emailable_customers
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def audience(n: int, *, prefix: str = "k") -> list[int]:
    return emailable_customers(n, prefix=prefix)


def campaign_for(pks: list[int], **fields) -> Campaign:
    segment = segment_create_static(
        name=f"Audience {uuid.uuid4().hex[:6]}", kind="imported", customer_ids=pks
    )
    return CampaignFactory(segment=segment, **{"status": "sending", **fields})


def stale_claim(campaign: Campaign, pk: int, *, channel: str = "email", minutes: int = 10):
    return Message.objects.create(
        campaign=campaign,
        customer_id=pk,
        channel=channel,
        address=f"k-{pk}@example.com",
        idempotency_key=f"{campaign.pk}:0:{pk}:{channel}",
        status="sending",
        attempts=1,
        claimed_at=timezone.now() - dt.timedelta(minutes=minutes),
    )


def test_a_stale_claim_the_provider_cannot_be_asked_about_is_lost_never_resent(
    twilio_stand_in, settings
):
    settings.MESSAGE_SEND_LEASE_SECONDS = 60
    (pk,) = audience(1)
    campaign = campaign_for([pk], channel="sms")
    message = stale_claim(campaign, pk, channel="sms")

    result = messages_resolve_stale(queryset=Message.objects.all())

    message.refresh_from_db()
    assert (result.lost, result.requeued, result.confirmed) == (1, 0, 0)
    assert (message.status, message.error) == ("failed", LOST_ERROR)
    assert twilio_stand_in.requests == []


def test_a_stale_claim_is_left_alone_while_sendgrid_cannot_be_reached(sendgrid_stand_in, settings):
    settings.MESSAGE_SEND_LEASE_SECONDS = 60
    (pk,) = audience(1)
    message = stale_claim(campaign_for([pk]), pk)
    settings.SENDGRID_API_HOST = "http://127.0.0.1:9"  # nothing listens

    result = messages_resolve_stale(queryset=Message.objects.all())

    message.refresh_from_db()
    assert result == type(result)()
    assert message.status == "sending"


def test_sweep_sends_what_sendgrid_never_got_and_restarts_a_stalled_fan_out(
    sendgrid_stand_in, settings, django_capture_on_commit_callbacks
):
    settings.MESSAGE_SEND_LEASE_SECONDS = 60
    settings.CAMPAIGN_STALL_SECONDS = 60
    pks = audience(3)
    stalled = campaign_for(pks)
    never_got = stale_claim(stalled, pks[0])
    Campaign.objects.filter(pk=stalled.pk).update(
        updated_at=timezone.now() - dt.timedelta(minutes=5)
    )
    Message.objects.filter(pk=never_got.pk).update(
        created_at=timezone.now() - dt.timedelta(minutes=10)
    )
    campaign_for(audience(1, prefix="busy"))  # just changed: not stalled, left alone

    with celery_app.connection_for_write() as conn:
        conn.default_channel.client.delete("email")
    result = campaigns_sweep()

    assert result == SweepResult(requeued=1, restarted=1)
    never_got.refresh_from_db()
    assert (never_got.status, never_got.claimed_at) == ("queued", None)
    with celery_app.connection_for_write() as conn:
        enqueued = conn.default_channel.client.lrange("email", 0, -1)
    tasks = sorted(
        (json.loads(m)["headers"]["task"], json.loads(m)["headers"]["argsrepr"]) for m in enqueued
    )
    assert tasks == [
        ("campaigns.campaign_dispatch_page", f"({stalled.pk}, {pks[0]})"),  # resumes there
        ("campaigns.message_send", f"({never_got.pk},)"),
    ]


def _worker_start(name: str) -> subprocess.Popen:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}",
        "DJANGO_CONN_MAX_AGE": "0",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "marketing", "worker", "-Q", "default,email"]
        + ["-n", name, "-c", "2", "--without-gossip", "--without-mingle", "-l", "warning"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for(lambda: name in str(celery_app.control.ping(destination=[name], timeout=0.5)))
    return proc


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_campaign_loses_and_duplicates_nothing(
    sendgrid_stand_in, settings, monkeypatch
):
    """1,000 recipients; the worker (parent and pool) gets SIGKILL once 300 were accepted,
    a new one starts; the sweeper (called here as beat would) settles the rest."""
    for name, value in {
        "SENDGRID_API_KEY": "SG.test-key",
        "SENDGRID_API_HOST": sendgrid_stand_in.url,
        "SENDGRID_FROM_EMAIL": "news@shop.example",
        "CAMPAIGN_EMAIL_BACKEND": "sendgrid",
        "SENDGRID_RATE_PER_SECOND": "0",
        "DISPATCH_BATCH_SIZE": "100",
        "PROVIDER_TIMEOUT_SECONDS": "2",
        "MESSAGE_SEND_LEASE_SECONDS": "3",
    }.items():
        monkeypatch.setenv(name, value)
    settings.MESSAGE_SEND_LEASE_SECONDS = 3
    settings.CAMPAIGN_STALL_SECONDS = 3
    with celery_app.connection_for_write() as conn:
        conn.default_channel.client.delete("default", "email", "unacked", "unacked_index")
    pks = audience(1_000)
    campaign = campaign_for(pks, status="draft")
    workers = [_worker_start(f"crash-1-{uuid.uuid4().hex[:6]}@localhost")]
    try:
        campaign_launch(campaign=campaign)
        wait_for(lambda: len(sendgrid_stand_in.accepted) >= 300, interval=0.02)
        os.killpg(workers[0].pid, signal.SIGKILL)
        workers[0].wait()
        assert len(sendgrid_stand_in.accepted) < 1_000  # killed mid-campaign
        workers.append(_worker_start(f"crash-2-{uuid.uuid4().hex[:6]}@localhost"))

        def settled() -> bool:
            campaigns_sweep()
            statuses = Counter(
                Message.objects.filter(campaign=campaign).values_list("status", flat=True)
            )
            done = Campaign.objects.get(pk=campaign.pk).status == "done"
            return done and statuses["sent"] + statuses["failed"] >= 1_000

        wait_for(settled, timeout=50, interval=1.0)
    finally:
        for worker in workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
                worker.wait(timeout=20)

    per_key = Counter(r.json()["custom_args"]["message_id"] for r in sendgrid_stand_in.requests)
    keys = {f"{campaign.pk}:0:{pk}:email" for pk in pks}
    assert set(per_key) == keys  # nothing lost
    assert max(per_key.values()) == 1  # nothing duplicated
    statuses = Counter(Message.objects.filter(campaign=campaign).values_list("status", flat=True))
    assert statuses == Counter({"sent": 1_000})

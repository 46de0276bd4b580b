"""Dispatch against the provider stand-ins over real HTTP: exactly-once sends, skips with their
reasons, retries, bounces, and one campaign end to end through a real Celery worker."""

import datetime as dt
import threading
import time
from collections import Counter

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.utils import timezone

from campaigns.dispatch import (
    MAX_SEND_ATTEMPTS,
    BatchResult,
    campaign_message_counts,
    message_send,
    messages_send_batch,
)
from campaigns.dispatch_rules import in_holdout, quiet_at, quiet_seconds_left, variant_index
from campaigns.errors import CampaignNotLaunchableError, CampaignStatusError
from campaigns.lifecycle import (
    campaign_launch,
    campaign_pause,
    campaign_resume,
    campaigns_launch_due,
)
from campaigns.models import Campaign, CampaignVariant, Message
from campaigns.providers import rate_limiter_for
from campaigns.services import campaign_cancel
from profiles.models import ChannelEndpoint, Consent, Customer
from profiles.segments.services import segment_create_static
from tests.campaigns.factories import (
    CampaignFactory,
    MessageTemplateFactory,
    emailable_customer,
)

pytestmark = pytest.mark.django_db


def recipients(n, *, consent=True, prefix="r", **customer_fields):
    """`n` emailable customers `<prefix>-<i>` (tests/campaigns/factories.py)."""
    return [
        emailable_customer(
            external_id=f"{prefix}-{i}",
            email=f"{prefix}-{i}@example.com",
            consent=consent,
            **customer_fields,
        )
        for i in range(n)
    ]


def sending_campaign(customers, name="Spring", **fields):
    segment = segment_create_static(
        name=f"Audience {name}", kind="imported", customer_ids=[c.pk for c in customers]
    )
    return CampaignFactory(name=name, segment=segment, **{"status": "sending", **fields})


def sent_to(stand_in):
    return Counter(r.json()["personalizations"][0]["to"][0]["email"] for r in stand_in.requests)


def pks(customers):
    return [c.pk for c in customers]


def test_each_recipient_gets_exactly_one_request_with_its_key(sendgrid_stand_in):
    customers = recipients(5)
    campaign = sending_campaign(customers)

    result = messages_send_batch(campaign=campaign, customer_ids=pks(customers))

    assert result == BatchResult(sent=5)
    assert sent_to(sendgrid_stand_in) == Counter({c.email: 1 for c in customers})
    messages = Message.objects.filter(campaign=campaign).order_by("customer_id")
    assert [m.status for m in messages] == ["sent"] * 5
    assert [m.idempotency_key for m in messages] == [
        f"{campaign.pk}:0:{c.pk}:email" for c in customers
    ]
    ids = {r.json()["custom_args"]["message_id"] for r in sendgrid_stand_in.requests}
    assert ids == {m.idempotency_key for m in messages}
    assert all(m.provider_message_id.startswith("sg-msg-") for m in messages)
    first = sendgrid_stand_in.requests[0].json()
    assert first["subject"] == "Hello"
    assert first["headers"]["List-Unsubscribe"].startswith("<http")
    assert first["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_running_the_batch_twice_sends_nothing_new(sendgrid_stand_in):
    customers = recipients(4)
    campaign = sending_campaign(customers)
    messages_send_batch(campaign=campaign, customer_ids=pks(customers))

    again = messages_send_batch(campaign=campaign, customer_ids=pks(customers))

    assert again == BatchResult()
    assert len(sendgrid_stand_in.requests) == 4
    assert Message.objects.filter(campaign=campaign, status="sent").count() == 4


def test_missing_consent_opted_out_and_missing_endpoint_are_skipped_with_reasons(
    sendgrid_stand_in,
):
    ok, opted_out = recipients(2)
    no_consent = recipients(1, consent=False, prefix="nc")[0]
    ChannelEndpoint.objects.filter(customer=opted_out).update(opted_out=True)
    no_endpoint = recipients(1, prefix="ne")[0]
    ChannelEndpoint.objects.filter(customer=no_endpoint).delete()
    bounced = recipients(1, prefix="b")[0]
    ChannelEndpoint.objects.filter(customer=bounced).update(attributes={"bounced": True})
    everyone = [ok, opted_out, no_consent, no_endpoint, bounced]
    campaign = sending_campaign(everyone)

    result = messages_send_batch(campaign=campaign, customer_ids=pks(everyone))

    assert result == BatchResult(sent=1, skipped=4)
    assert sent_to(sendgrid_stand_in) == Counter({ok.email: 1})
    reasons = dict(
        Message.objects.filter(campaign=campaign).values_list("customer_id", "skip_reason")
    )
    assert reasons == {
        ok.pk: "",
        opted_out.pk: "consent",
        no_consent.pk: "consent",
        no_endpoint.pk: "no_endpoint",
        bounced.pk: "no_endpoint",
    }


def test_frequency_cap_counts_messages_of_other_campaigns(sendgrid_stand_in, settings):
    settings.CAMPAIGN_FREQUENCY_CAP = 2
    customers = recipients(3)
    first = sending_campaign(customers, name="First")
    second = sending_campaign(customers, name="Second")
    third = sending_campaign(customers, name="Third")
    messages_send_batch(campaign=first, customer_ids=pks(customers))
    messages_send_batch(campaign=second, customer_ids=pks(customers[:1]))

    result = messages_send_batch(campaign=third, customer_ids=pks(customers))

    assert result == BatchResult(sent=2, skipped=1)
    capped = Message.objects.get(campaign=third, skip_reason="frequency_cap")
    assert capped.customer_id == customers[0].pk
    assert len(sendgrid_stand_in.requests) == 3 + 1 + 2


def test_per_channel_cap_counts_only_that_channel(sendgrid_stand_in, settings):
    settings.CAMPAIGN_FREQUENCY_CAP = 10
    settings.CAMPAIGN_FREQUENCY_CAP_PER_CHANNEL = 1
    sms_only, emailed = recipients(2)
    earlier_sms = CampaignFactory(name="SMS before", channel="sms")
    earlier_email = CampaignFactory(name="Email before")
    now = timezone.now()
    for customer, before, channel in (
        (sms_only, earlier_sms, "sms"),
        (emailed, earlier_email, "email"),
    ):
        Message.objects.create(
            campaign=before,
            customer=customer,
            channel=channel,
            idempotency_key=f"{before.pk}:0:{customer.pk}:{channel}",
            status="sent",
            sent_at=now - dt.timedelta(days=1),
        )
    campaign = sending_campaign([sms_only, emailed])

    result = messages_send_batch(campaign=campaign, customer_ids=[sms_only.pk, emailed.pk])

    assert result == BatchResult(sent=1, skipped=1)
    assert sent_to(sendgrid_stand_in) == Counter({sms_only.email: 1})


def test_sent_messages_older_than_the_window_do_not_count(sendgrid_stand_in, settings):
    settings.CAMPAIGN_FREQUENCY_CAP = 1
    (customer,) = recipients(1)
    earlier = CampaignFactory(name="Long ago")
    Message.objects.create(
        campaign=earlier,
        customer=customer,
        channel="email",
        idempotency_key=f"{earlier.pk}:0:{customer.pk}:email",
        status="sent",
        sent_at=timezone.now() - dt.timedelta(days=8),
    )
    campaign = sending_campaign([customer])

    assert messages_send_batch(campaign=campaign, customer_ids=[customer.pk]) == BatchResult(sent=1)


def test_holdout_is_deterministic_and_receives_nothing(sendgrid_stand_in):
    customers = recipients(40)
    campaign = sending_campaign(customers, holdout_percent=25)
    expected = {
        c.pk for c in customers if in_holdout(campaign_id=campaign.pk, customer_id=c.pk, percent=25)
    }

    result = messages_send_batch(campaign=campaign, customer_ids=pks(customers))

    held = set(
        Message.objects.filter(campaign=campaign, skip_reason="holdout").values_list(
            "customer_id", flat=True
        )
    )
    assert held == expected
    assert result == BatchResult(sent=40 - len(expected), skipped=len(expected))
    assert set(sent_to(sendgrid_stand_in)) == {c.email for c in customers if c.pk not in held}


def test_holdout_share_is_about_the_percent():
    held = sum(in_holdout(campaign_id=7, customer_id=pk, percent=10) for pk in range(20_000))
    assert 1_800 <= held <= 2_200
    again = sum(in_holdout(campaign_id=7, customer_id=pk, percent=10) for pk in range(20_000))
    assert again == held


def test_variants_split_by_weight():
    picks = Counter(
        variant_index(campaign_id=3, customer_id=pk, weights=[3, 1]) for pk in range(8_000)
    )
    assert 5_700 <= picks[0] <= 6_300
    assert picks[0] + picks[1] == 8_000


def two_variant_campaign(customers):
    campaign = sending_campaign(customers)
    a = CampaignVariant.objects.create(campaign=campaign, name="A", template=campaign.template)
    b = CampaignVariant.objects.create(
        campaign=campaign, name="B", template=MessageTemplateFactory(subject="Other")
    )
    return campaign, a, b


def test_variant_is_part_of_the_key(sendgrid_stand_in):
    customers = recipients(6)
    campaign, a, b = two_variant_campaign(customers)

    messages_send_batch(campaign=campaign, customer_ids=pks(customers))

    for message in Message.objects.filter(campaign=campaign):
        assert message.variant_id in (a.pk, b.pk)
        assert message.idempotency_key == (
            f"{campaign.pk}:{message.variant_id}:{message.customer_id}:email"
        )
    subjects = Counter(r.json()["subject"] for r in sendgrid_stand_in.requests)
    assert sum(subjects.values()) == 6


def test_render_error_fails_that_recipient_only(sendgrid_stand_in):
    good = recipients(2, attributes={"code": "X1"})
    bad = recipients(1, prefix="bad")[0]
    template = MessageTemplateFactory(body="Your code {{ customer.attributes.code }}")
    campaign = sending_campaign([*good, bad], template=template)

    result = messages_send_batch(campaign=campaign, customer_ids=[*pks(good), bad.pk])

    assert result == BatchResult(sent=2, failed=1)
    failed = Message.objects.get(campaign=campaign, customer=bad)
    assert (failed.status, failed.skip_reason) == ("failed", "render_error")
    assert "code" in failed.error
    assert sent_to(sendgrid_stand_in) == Counter({c.email: 1 for c in good})


def test_429_then_success_is_sent_once_after_the_retry(sendgrid_stand_in):
    (customer,) = recipients(1)
    campaign = sending_campaign([customer])
    sendgrid_stand_in.fail_next(1, 429, retry_after=0)

    result = messages_send_batch(campaign=campaign, customer_ids=[customer.pk])

    message = Message.objects.get(campaign=campaign)
    assert result == BatchResult(retrying=1)
    assert (message.status, message.attempts) == ("queued", 1)
    assert "429" in message.error

    assert message_send(message_id=message.pk) == "sent"
    assert message_send(message_id=message.pk) == "sent"  # a redelivered retry: nothing

    message.refresh_from_db()
    assert (message.status, message.attempts, message.error) == ("sent", 2, "")
    assert len(sendgrid_stand_in.requests) == 2
    assert {r.json()["custom_args"]["message_id"] for r in sendgrid_stand_in.requests} == {
        message.idempotency_key
    }


def test_a_retry_checks_consent_again(sendgrid_stand_in):
    (customer,) = recipients(1)
    campaign = sending_campaign([customer])
    sendgrid_stand_in.fail_next(1, 429, retry_after=0)
    messages_send_batch(campaign=campaign, customer_ids=[customer.pk])
    Consent.objects.filter(customer=customer).update(granted=False)
    message = Message.objects.get(campaign=campaign)

    assert message_send(message_id=message.pk) == "skipped"

    message.refresh_from_db()
    assert (message.status, message.skip_reason, message.attempts) == ("skipped", "consent", 1)
    assert len(sendgrid_stand_in.requests) == 1


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("paused", ("queued", "")),  # resuming runs the batches again, which send it
        ("cancelled", ("skipped", "cancelled")),
    ],
)
def test_a_retry_of_a_paused_campaign_waits_and_of_a_cancelled_one_is_skipped(
    sendgrid_stand_in, status, outcome
):
    (customer,) = recipients(1)
    campaign = sending_campaign([customer])
    sendgrid_stand_in.fail_next(1, 429, retry_after=0)
    messages_send_batch(campaign=campaign, customer_ids=[customer.pk])
    Campaign.objects.filter(pk=campaign.pk).update(status=status)
    message = Message.objects.get(campaign=campaign)

    assert message_send(message_id=message.pk) == outcome[0]

    message.refresh_from_db()
    assert (message.status, message.skip_reason, message.attempts) == (*outcome, 1)
    assert len(sendgrid_stand_in.requests) == 1


def test_transient_errors_give_up_after_max_attempts(sendgrid_stand_in):
    (customer,) = recipients(1)
    campaign = sending_campaign([customer])
    sendgrid_stand_in.fail_next(5, 429, retry_after=0)

    messages_send_batch(campaign=campaign, customer_ids=[customer.pk])
    message = Message.objects.get(campaign=campaign)
    statuses = [message_send(message_id=message.pk) for _ in range(5)]

    assert statuses == ["queued", "queued", "queued", "failed", "failed"]
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("failed", 5)
    assert message.error.startswith("gave up")
    assert len(sendgrid_stand_in.requests) == 5


@pytest.mark.parametrize("failure", ["timeout", "503"])
def test_an_ambiguous_error_is_not_resent_but_settled_by_the_lookup(
    sendgrid_stand_in, settings, failure
):
    (customer,) = recipients(1)
    campaign = sending_campaign([customer])
    if failure == "timeout":  # SendGrid takes the message, the answer comes too late
        settings.PROVIDER_TIMEOUT_SECONDS = 0.2
        sendgrid_stand_in.delay = 0.6
    else:
        sendgrid_stand_in.fail_next(1, 503)

    result = messages_send_batch(campaign=campaign, customer_ids=[customer.pk])

    message = Message.objects.get(campaign=campaign)
    assert result == BatchResult(in_doubt=1)
    assert (message.status, message.attempts) == ("sending", 1)
    assert message.error.startswith("in doubt")
    time.sleep(sendgrid_stand_in.delay)  # the stand-in has taken it by the end of the lease
    sendgrid_stand_in.delay = 0
    assert message_send(message_id=message.pk) == "sending"  # a retry does not resend it
    settings.MESSAGE_SEND_LEASE_SECONDS = 0
    if failure == "503":  # SendGrid did not take it after all: sent once more
        assert message_send(message_id=message.pk) == "sent"
    else:  # the lookup finds it: sent, never resent
        assert message_send(message_id=message.pk) == "sent"
        assert len(sendgrid_stand_in.requests) == 1
    message.refresh_from_db()
    assert message.status == "sent"
    assert sent_to(sendgrid_stand_in) == Counter({customer.email: 1 + (failure == "503")})


def test_cancelling_skips_the_queued_messages(sendgrid_stand_in):
    sent, retrying = recipients(2)
    campaign = sending_campaign([sent, retrying])
    messages_send_batch(campaign=campaign, customer_ids=[sent.pk])
    sendgrid_stand_in.fail_next(1, 429, retry_after=0)
    messages_send_batch(campaign=campaign, customer_ids=[retrying.pk])

    campaign_cancel(campaign=campaign)

    statuses = Counter(
        Message.objects.filter(campaign=campaign).values_list("status", "skip_reason")
    )
    assert statuses == Counter({("sent", ""): 1, ("skipped", "cancelled"): 1})


@pytest.fixture
def slow_sendgrid_limit(settings):
    """A bucket of one token, refilled after 1000 s."""
    settings.SENDGRID_RATE_PER_SECOND = 0.001
    limiter = rate_limiter_for("sendgrid")
    limiter.client.delete(limiter.key)
    yield limiter
    limiter.client.delete(limiter.key)


def test_rate_limit_refusals_are_no_attempts(sendgrid_stand_in, slow_sendgrid_limit):
    customers = recipients(3)
    campaign = sending_campaign(customers)

    result = messages_send_batch(campaign=campaign, customer_ids=pks(customers))

    assert result == BatchResult(sent=1, retrying=2)
    held = Message.objects.filter(campaign=campaign, status="queued")
    assert [m.attempts for m in held] == [0, 0]
    for _ in range(MAX_SEND_ATTEMPTS + 1):
        assert message_send(message_id=held[0].pk) == "queued"
    assert Message.objects.get(pk=held[0].pk).attempts == 0
    assert len(sendgrid_stand_in.requests) == 1


def test_a_queued_message_keeps_its_variant_when_the_weights_change(sendgrid_stand_in):
    customers = recipients(6)
    campaign, a, b = two_variant_campaign(customers)
    sendgrid_stand_in.fail_next(99, 429, retry_after=0)
    messages_send_batch(campaign=campaign, customer_ids=pks(customers))
    keys = dict(Message.objects.filter(campaign=campaign).values_list("pk", "idempotency_key"))
    assert {m.variant_id for m in Message.objects.filter(campaign=campaign)} == {a.pk, b.pk}
    CampaignVariant.objects.filter(pk=a.pk).update(weight=0)  # all new picks would be B
    sendgrid_stand_in.reset()

    result = messages_send_batch(campaign=campaign, customer_ids=pks(customers))

    assert result == BatchResult(sent=6)
    assert dict(Message.objects.filter(campaign=campaign).values_list("pk", "idempotency_key")) == (
        keys
    )
    assert sent_to(sendgrid_stand_in) == Counter({c.email: 1 for c in customers})


def test_a_queued_message_is_decided_again_for_consent_and_quiet_hours(sendgrid_stand_in):
    withdrawn, quiet = recipients(2)
    campaign = sending_campaign([withdrawn, quiet])
    sendgrid_stand_in.fail_next(1, 429, retry_after=0)
    messages_send_batch(campaign=campaign, customer_ids=[withdrawn.pk, quiet.pk])
    assert set(Message.objects.values_list("status", flat=True)) == {"queued"}
    Consent.objects.filter(customer=withdrawn).update(granted=False)
    hour = timezone.now().hour
    Campaign.objects.filter(pk=campaign.pk).update(
        quiet_hours_start=(hour - 1) % 24, quiet_hours_end=(hour + 2) % 24
    )
    campaign.refresh_from_db()
    sendgrid_stand_in.reset()

    result = messages_send_batch(campaign=campaign, customer_ids=[withdrawn.pk, quiet.pk])

    assert result == BatchResult(skipped=1, deferred=1)
    assert Message.objects.get(customer=withdrawn).skip_reason == "consent"
    held = Message.objects.get(customer=quiet)
    assert held.status == "queued"
    assert message_send(message_id=held.pk) == "queued"  # the retry waits too
    assert sendgrid_stand_in.requests == []


def test_permanent_invalid_address_fails_and_marks_the_endpoint_bounced(sendgrid_stand_in):
    good, bad = recipients(2)
    campaign = sending_campaign([good, bad])
    sendgrid_stand_in.fail_for(bad.email, 400)

    result = messages_send_batch(campaign=campaign, customer_ids=[good.pk, bad.pk])

    assert result == BatchResult(sent=1, failed=1)
    failed = Message.objects.get(campaign=campaign, customer=bad)
    assert failed.status == "failed"
    assert "valid address" in failed.error
    assert ChannelEndpoint.objects.get(customer=bad).attributes == {"bounced": True}
    assert ChannelEndpoint.objects.get(customer=good).attributes == {}


def test_quiet_hours_defer_in_the_recipients_timezone(sendgrid_stand_in):
    hour = timezone.now().hour
    in_utc = recipients(1, prefix="utc", timezone="UTC")[0]
    in_tokyo = recipients(1, prefix="tokyo", timezone="Asia/Tokyo")[0]
    campaign = sending_campaign(
        # Three hours around now in UTC (no flake at an hour's turn); Tokyo is 9 hours ahead.
        [in_utc, in_tokyo],
        quiet_hours_start=(hour - 1) % 24,
        quiet_hours_end=(hour + 2) % 24,
    )

    result = messages_send_batch(campaign=campaign, customer_ids=[in_utc.pk, in_tokyo.pk])

    assert result == BatchResult(sent=1, deferred=1)
    assert not Message.objects.filter(customer=in_utc).exists()
    assert sent_to(sendgrid_stand_in) == Counter({in_tokyo.email: 1})

    # The deferred batch, run once the quiet hours are over, decides and sends.
    Campaign.objects.filter(pk=campaign.pk).update(quiet_hours_start=None, quiet_hours_end=None)
    campaign.refresh_from_db()
    later = messages_send_batch(campaign=campaign, customer_ids=[in_utc.pk])

    assert later == BatchResult(sent=1)
    assert sent_to(sendgrid_stand_in) == Counter({in_tokyo.email: 1, in_utc.email: 1})


@pytest.mark.parametrize(
    ("hour", "start", "end", "quiet"),
    [(23, 22, 8, True), (7, 22, 8, True), (8, 22, 8, False), (12, 9, 17, True), (5, 5, 5, False)],
)
def test_quiet_at(hour, start, end, quiet):
    assert quiet_at(hour, start=start, end=end) is quiet


@pytest.mark.parametrize(
    ("local", "start", "end", "left"),
    [
        ("23:30:00", 22, 8, 8 * 3600 + 1800),
        ("07:59:30", 22, 8, 30),
        ("08:00:00", 22, 8, 0),
        ("12:15:00", 12, 13, 2700),
        ("12:15:00", None, None, 0),
    ],
)
def test_quiet_seconds_left(local, start, end, left):
    h, m, sec = (int(x) for x in local.split(":"))
    assert quiet_seconds_left(h * 3600 + m * 60 + sec, start=start, end=end) == left


def test_stale_sending_rows_are_settled_with_sendgrid_and_sent_once(sendgrid_stand_in, settings):
    settings.MESSAGE_SEND_LEASE_SECONDS = 60
    crashed, accepted, in_flight, fresh = recipients(4)
    campaign = sending_campaign([crashed, accepted, in_flight, fresh])
    now = timezone.now()
    claims = (
        (crashed, now - dt.timedelta(minutes=5)),
        (accepted, now - dt.timedelta(minutes=5)),
        (in_flight, now),
    )
    for customer, claimed in claims:
        Message.objects.create(
            campaign=campaign,
            customer=customer,
            channel="email",
            address=customer.email,
            idempotency_key=f"{campaign.pk}:0:{customer.pk}:email",
            status="sending",
            attempts=1,
            claimed_at=claimed,
        )
    # SendGrid got `accepted` before its worker died; `crashed` never left the worker.
    sendgrid_stand_in.accepted[f"{campaign.pk}:0:{accepted.pk}:email"] = "sg-msg-early"

    result = messages_send_batch(
        campaign=campaign, customer_ids=pks([crashed, accepted, in_flight, fresh])
    )

    assert result == BatchResult(sent=2)
    assert sent_to(sendgrid_stand_in) == Counter({crashed.email: 1, fresh.email: 1})
    rows = {
        m.customer_id: (m.status, m.provider_message_id[:12], m.attempts)
        for m in Message.objects.filter(campaign=campaign)
    }
    assert rows[crashed.pk][0::2] == ("sent", 2)
    assert rows[accepted.pk] == ("sent", "sg-msg-early", 1)
    assert rows[in_flight.pk] == ("sending", "", 1)
    assert campaign_message_counts(campaign=campaign) == {"sending": 1, "sent": 3, "lost": 0}


def test_a_queued_row_left_by_a_crash_before_the_claim_is_sent_once(sendgrid_stand_in):
    (customer,) = recipients(1)
    campaign = sending_campaign([customer])
    Message.objects.create(
        campaign=campaign,
        customer=customer,
        channel="email",
        address=customer.email,
        idempotency_key=f"{campaign.pk}:0:{customer.pk}:email",
    )

    assert messages_send_batch(campaign=campaign, customer_ids=[customer.pk]) == BatchResult(sent=1)
    assert messages_send_batch(campaign=campaign, customer_ids=[customer.pk]) == BatchResult()
    assert len(sendgrid_stand_in.requests) == 1


def test_a_provider_configuration_error_puts_the_claims_back_and_a_rerun_sends_once(
    sendgrid_stand_in, settings
):
    customers = recipients(3)
    campaign = sending_campaign(customers)
    settings.CAMPAIGN_EMAIL_BACKEND = "carrier-pigeon"

    with pytest.raises(ImproperlyConfigured):
        messages_send_batch(campaign=campaign, customer_ids=pks(customers))

    rows = list(
        Message.objects.filter(campaign=campaign)
        .order_by("customer_id")
        .values_list("status", "attempts")
    )
    assert rows == [("queued", 0)] * 3
    assert sendgrid_stand_in.requests == []

    settings.CAMPAIGN_EMAIL_BACKEND = "sendgrid"
    again = messages_send_batch(campaign=campaign, customer_ids=pks(customers))

    assert again == BatchResult(sent=3)
    assert sent_to(sendgrid_stand_in) == Counter({c.email: 1 for c in customers})


def test_batch_refuses_to_run_inside_an_open_transaction(sendgrid_stand_in):
    customers = recipients(1)
    campaign = sending_campaign(customers)

    with pytest.raises(RuntimeError), transaction.atomic():
        messages_send_batch(campaign=campaign, customer_ids=pks(customers))

    assert not Message.objects.exists()
    assert sendgrid_stand_in.requests == []


def test_a_paused_campaign_sends_nothing(sendgrid_stand_in):
    customers = recipients(2)
    campaign = sending_campaign(customers, status="paused")

    assert messages_send_batch(campaign=campaign, customer_ids=pks(customers)) == BatchResult()
    assert sendgrid_stand_in.requests == []
    assert not Message.objects.exists()


def test_launch_moves_draft_to_sending_and_enqueues_after_commit(
    django_capture_on_commit_callbacks,
):
    campaign = CampaignFactory(status="draft")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        campaign_launch(campaign=campaign)

    campaign.refresh_from_db()
    assert campaign.status == "sending"
    assert campaign.started_at is not None
    assert len(callbacks) == 1


@pytest.mark.parametrize("status", ["sending", "paused", "done"])
def test_launch_refuses_a_campaign_not_in_draft_or_scheduled(
    status, django_capture_on_commit_callbacks
):
    campaign = CampaignFactory(status=status)

    with (
        django_capture_on_commit_callbacks(execute=False) as callbacks,
        pytest.raises(CampaignNotLaunchableError),
    ):
        campaign_launch(campaign=campaign)

    campaign.refresh_from_db()
    assert (campaign.status, campaign.started_at) == (status, None)
    assert callbacks == []


@pytest.mark.django_db(transaction=True)
def test_the_same_batch_run_by_two_workers_at_once_sends_each_message_once(sendgrid_stand_in):
    customers = recipients(30)
    campaign = sending_campaign(customers)
    results = []

    def run():
        try:
            results.append(messages_send_batch(campaign=campaign.pk, customer_ids=pks(customers)))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results) == 2
    assert sum(r.sent for r in results) == 30
    assert sent_to(sendgrid_stand_in) == Counter({c.email: 1 for c in customers})
    assert Message.objects.filter(campaign=campaign, status="sent").count() == 30


def test_pause_and_resume(django_capture_on_commit_callbacks, sendgrid_stand_in):
    customers = recipients(2)
    campaign = sending_campaign(customers)

    campaign_pause(campaign=campaign)
    assert messages_send_batch(campaign=campaign, customer_ids=pks(customers)) == BatchResult()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        campaign_resume(campaign=campaign)

    campaign.refresh_from_db()
    assert campaign.status == "sending"
    assert len(callbacks) == 1
    assert messages_send_batch(campaign=campaign, customer_ids=pks(customers)) == BatchResult(
        sent=2
    )


def test_pause_refuses_a_campaign_not_sending():
    campaign = CampaignFactory(status="draft")

    with pytest.raises(CampaignStatusError):
        campaign_pause(campaign=campaign)

    campaign.refresh_from_db()
    assert campaign.status == "draft"


def test_scheduled_campaigns_launch_when_due(django_capture_on_commit_callbacks):
    now = timezone.now()
    due = CampaignFactory(status="scheduled", scheduled_at=now - dt.timedelta(minutes=1))
    later = CampaignFactory(status="scheduled", scheduled_at=now + dt.timedelta(hours=1))
    draft = CampaignFactory(status="draft", scheduled_at=now - dt.timedelta(hours=1))

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert campaigns_launch_due(now=now) == 1

    statuses = dict(Campaign.objects.values_list("pk", "status"))
    assert statuses == {due.pk: "sending", later.pk: "scheduled", draft.pk: "draft"}
    assert len(callbacks) == 1


@pytest.fixture
def worker_sendgrid_env(sendgrid_stand_in, monkeypatch):
    """The worker subprocess reads its settings from the environment."""
    for name, value in {
        "SENDGRID_API_KEY": "SG.test-key",
        "SENDGRID_API_HOST": sendgrid_stand_in.url,
        "SENDGRID_FROM_EMAIL": "news@shop.example",
        "CAMPAIGN_EMAIL_BACKEND": "sendgrid",
        "DISPATCH_BATCH_SIZE": "20",
    }.items():
        monkeypatch.setenv(name, value)
    return sendgrid_stand_in


@pytest.mark.django_db(transaction=True)
def test_campaign_of_50_sent_end_to_end_by_the_worker_exactly_once(
    worker_sendgrid_env, celery_worker_process
):
    customers = recipients(50, prefix="e2e")
    campaign = sending_campaign(customers, name="End to end", status="draft")

    campaign_launch(campaign=campaign)

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        done = Campaign.objects.get(pk=campaign.pk).status == "done"
        if done and Message.objects.filter(campaign=campaign, status="sent").count() == 50:
            break
        time.sleep(0.2)
    assert Message.objects.filter(campaign=campaign, status="sent").count() == 50
    assert Campaign.objects.get(pk=campaign.pk).status == "done"
    assert sent_to(worker_sendgrid_env) == Counter({c.email: 1 for c in customers})
    assert Customer.objects.count() == 50


def test_admin_lists_messages_and_refuses_edits(admin_client, sendgrid_stand_in):
    customers = recipients(2)
    campaign = sending_campaign(customers)
    messages_send_batch(campaign=campaign, customer_ids=pks(customers))
    message = Message.objects.order_by("pk").first()

    listing = admin_client.get("/admin/campaigns/message/")
    change = admin_client.post(
        f"/admin/campaigns/message/{message.pk}/change/", {"status": "queued"}
    )

    assert listing.status_code == 200
    assert message.idempotency_key in listing.content.decode()
    assert change.status_code == 403
    message.refresh_from_db()
    assert message.status == "sent"

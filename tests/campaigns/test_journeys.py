"""Journeys (triggered campaigns): entering from the event stream, the exit check at the due
time, the send through dispatch (its key carries the entry), re-entry rules, idempotency, and
one journey end to end through a real Celery worker."""

import datetime as dt
import time
import uuid
from collections import Counter

import pytest
from django.core.cache import cache
from django.utils import timezone

from campaigns.dispatch import messages_send_batch
from campaigns.errors import CampaignNotReadyError, CampaignStatusError
from campaigns.journeys import (
    WATERMARK_KEY,
    journey_counts,
    journey_entries_decide_due,
    journey_events_consume,
)
from campaigns.lifecycle import (
    campaign_dispatch_page,
    campaign_end,
    campaign_launch,
    campaign_pause,
    campaign_resume,
)
from campaigns.models import Campaign, JourneyEntry, Message
from marketing.celery import app as celery_app
from profiles.ingest import EventRow
from profiles.models import Customer
from profiles.services.events import events_ingest
from tests.campaigns.factories import CampaignFactory
from tests.campaigns.test_dispatch import (  # noqa: F401 - worker_sendgrid_env is a fixture
    recipients,
    sent_to,
    worker_sendgrid_env,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def eager():
    """Tasks run in the process when enqueued (countdowns are not waited for)."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def journey(**fields) -> Campaign:
    """An active cart-abandonment journey: add_to_cart, and no purchase within 30 minutes."""
    defaults = {
        "name": "Cart reminder",
        "segment": None,
        "audience_type": "trigger",
        "trigger_event_type": "add_to_cart",
        "trigger_exit_event_type": "purchase",
        "trigger_delay_minutes": 30,
    }
    campaign = CampaignFactory(**{**defaults, **fields})
    campaign_launch(campaign=campaign)
    campaign.refresh_from_db()
    return campaign


def event(customer, kind, at):
    return EventRow(
        event_id=uuid.uuid4(),
        customer_id=customer.external_id,
        type=kind,
        item_id="sku-1",
        value=None,
        channel="",
        campaign_id=None,
        occurred_at=at,
        properties={},
    )


def ingest(customer, kind, at):
    events_ingest(rows=[event(customer, kind, at)])


def activated_before(campaign, days):
    """Pretend the journey has been active for `days` (so past events can enter it)."""
    started = timezone.now() - dt.timedelta(days=days)
    Campaign.objects.filter(pk=campaign.pk).update(started_at=started)
    campaign.refresh_from_db()


def test_add_to_cart_without_purchase_gets_one_message_after_the_delay(
    sendgrid_stand_in, eager, django_capture_on_commit_callbacks
):
    customer = recipients(1)[0]
    campaign = journey()
    now = timezone.now()
    ingest(customer, "add_to_cart", now)

    assert journey_events_consume().entries == 1
    entry = JourneyEntry.objects.get(campaign=campaign)
    assert (entry.customer_id, entry.status) == (customer.pk, "waiting")
    assert entry.due_at == entry.triggered_at + dt.timedelta(minutes=30)

    assert journey_entries_decide_due(now=now + dt.timedelta(minutes=29)).dispatched == 0
    with django_capture_on_commit_callbacks(execute=True):
        decided = journey_entries_decide_due(now=now + dt.timedelta(minutes=31))

    assert decided.dispatched == 1
    assert sent_to(sendgrid_stand_in) == Counter({customer.email: 1})
    message = Message.objects.get(campaign=campaign)
    assert message.idempotency_key == f"{campaign.pk}:0:{customer.pk}:email:e{entry.pk}"
    assert message.journey_entry_id == entry.pk
    entry.refresh_from_db()
    assert entry.status == "sent"
    assert journey_counts(campaign=campaign) == {"sent": 1}


def test_add_to_cart_then_purchase_exits_without_a_message(
    sendgrid_stand_in, eager, django_capture_on_commit_callbacks
):
    customer = recipients(1)[0]
    campaign = journey()
    now = timezone.now()
    ingest(customer, "add_to_cart", now)
    ingest(customer, "purchase", now + dt.timedelta(minutes=5))
    journey_events_consume()

    with django_capture_on_commit_callbacks(execute=True):
        decided = journey_entries_decide_due(now=now + dt.timedelta(minutes=31))

    assert (decided.exited, decided.dispatched) == (1, 0)
    entry = JourneyEntry.objects.get(campaign=campaign)
    assert entry.status == "exited"
    assert entry.decided_at is not None
    assert not Message.objects.exists()
    assert sendgrid_stand_in.requests == []


def test_an_entry_deferred_by_quiet_hours_exits_on_a_purchase_meanwhile(sendgrid_stand_in):
    customer = recipients(1)[0]
    campaign = journey()
    activated_before(campaign, days=1)
    now = timezone.now()
    ingest(customer, "add_to_cart", now - dt.timedelta(minutes=40))
    journey_events_consume()
    entry = JourneyEntry.objects.get(campaign=campaign)
    # The entry was handed over, its send deferred by quiet hours; then the customer buys.
    ingest(customer, "purchase", now)

    result = messages_send_batch(
        campaign=campaign, customer_ids=[customer.pk], journey_entry_id=entry.pk
    )

    assert result.sent == 0
    entry.refresh_from_db()
    assert entry.status == "exited"
    assert not Message.objects.exists()
    assert sendgrid_stand_in.requests == []


def test_a_purchase_before_the_add_to_cart_does_not_exit(
    sendgrid_stand_in, eager, django_capture_on_commit_callbacks
):
    customer = recipients(1)[0]
    campaign = journey()
    now = timezone.now()
    activated_before(campaign, 1)
    ingest(customer, "purchase", now - dt.timedelta(minutes=10))
    ingest(customer, "add_to_cart", now)
    journey_events_consume()

    with django_capture_on_commit_callbacks(execute=True):
        journey_entries_decide_due(now=now + dt.timedelta(minutes=31))

    assert JourneyEntry.objects.get(campaign=campaign).status == "sent"
    assert sent_to(sendgrid_stand_in) == Counter({customer.email: 1})


def test_without_reentry_days_a_customer_enters_once_ever():
    customer = recipients(1)[0]
    campaign = journey(trigger_reentry_days=None)
    now = timezone.now()
    activated_before(campaign, 30)
    for days_ago in (20, 10, 0):
        ingest(customer, "add_to_cart", now - dt.timedelta(days=days_ago))

    journey_events_consume()

    entries = JourneyEntry.objects.filter(campaign=campaign)
    assert [e.triggered_at for e in entries] == [now - dt.timedelta(days=20)]


def test_reentry_days_let_a_customer_in_again_only_after_that_many_days():
    customer = recipients(1)[0]
    campaign = journey(trigger_reentry_days=7)
    now = timezone.now()
    activated_before(campaign, 30)
    for days_ago in (20, 15, 12, 1):
        ingest(customer, "add_to_cart", now - dt.timedelta(days=days_ago))

    journey_events_consume()

    entered = sorted(
        (now - e.triggered_at).days for e in JourneyEntry.objects.filter(campaign=campaign)
    )
    assert entered == [1, 12, 20]


def test_each_entry_of_a_returning_customer_gets_its_own_message(
    sendgrid_stand_in, eager, django_capture_on_commit_callbacks
):
    customer = recipients(1)[0]
    campaign = journey(trigger_reentry_days=1)
    now = timezone.now()
    activated_before(campaign, 5)
    ingest(customer, "add_to_cart", now - dt.timedelta(days=3))
    ingest(customer, "add_to_cart", now - dt.timedelta(hours=1))
    journey_events_consume()

    with django_capture_on_commit_callbacks(execute=True):
        assert journey_entries_decide_due(now=now).dispatched == 2

    keys = sorted(
        Message.objects.filter(campaign=campaign).values_list("idempotency_key", flat=True)
    )
    entries = sorted(JourneyEntry.objects.filter(campaign=campaign).values_list("pk", flat=True))
    assert keys == sorted(f"{campaign.pk}:0:{customer.pk}:email:e{pk}" for pk in entries)
    assert sent_to(sendgrid_stand_in) == Counter({customer.email: 2})


def test_events_before_the_journey_was_activated_never_enter():
    customer = recipients(1)[0]
    ingest(customer, "add_to_cart", timezone.now() - dt.timedelta(minutes=5))
    campaign = journey()

    assert journey_events_consume().entries == 0
    assert not JourneyEntry.objects.filter(campaign=campaign).exists()


def test_other_event_types_and_other_journeys_triggers_are_kept_apart():
    alice, bob = recipients(2)
    carts = journey()
    views = journey(name="Browse reminder", trigger_event_type="view", trigger_exit_event_type="")
    now = timezone.now()
    ingest(alice, "add_to_cart", now)
    ingest(bob, "view", now)
    ingest(bob, "click", now)

    assert journey_events_consume().entries == 2

    assert list(JourneyEntry.objects.filter(campaign=carts).values_list("customer_id")) == [
        (alice.pk,)
    ]
    assert list(JourneyEntry.objects.filter(campaign=views).values_list("customer_id")) == [
        (bob.pk,)
    ]


def test_reading_the_stream_again_creates_no_duplicates():
    customers = recipients(3)
    campaign = journey(trigger_reentry_days=0)
    now = timezone.now()
    for customer in customers:
        ingest(customer, "add_to_cart", now)
    journey_events_consume()

    cache.set(WATERMARK_KEY, 0, timeout=None)  # a watermark far behind: all read again
    again = journey_events_consume()

    assert again.events == 3
    assert JourneyEntry.objects.filter(campaign=campaign).count() == 3


def test_the_watermark_stays_behind_events_that_may_not_have_settled(settings):
    customer = recipients(1)[0]
    journey()
    ingest(customer, "add_to_cart", timezone.now())

    first = journey_events_consume()
    later = journey_events_consume(now=timezone.now() + dt.timedelta(seconds=30))
    after_that = journey_events_consume(now=timezone.now() + dt.timedelta(seconds=31))

    assert (first.events, first.entries) == (1, 1)
    assert (later.events, later.entries) == (1, 0)  # read again, entered once
    assert after_that.events == 0


def test_deciding_twice_hands_each_entry_over_once_and_sending_twice_sends_once(
    sendgrid_stand_in, django_capture_on_commit_callbacks
):
    customer = recipients(1)[0]
    campaign = journey()
    now = timezone.now()
    ingest(customer, "add_to_cart", now)
    journey_events_consume()
    later = now + dt.timedelta(minutes=31)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = journey_entries_decide_due(now=later)
        second = journey_entries_decide_due(now=later)

    assert (first.dispatched, second.dispatched) == (1, 0)
    assert len(callbacks) == 1  # the second run hands over nothing
    entry = JourneyEntry.objects.get(campaign=campaign)
    for _ in range(2):  # the send task, redelivered
        messages_send_batch(
            campaign=campaign.pk, customer_ids=[customer.pk], journey_entry_id=entry.pk
        )

    assert sent_to(sendgrid_stand_in) == Counter({customer.email: 1})
    assert Message.objects.filter(campaign=campaign).count() == 1
    entry.refresh_from_db()
    assert entry.status == "sent"


def test_caps_apply_to_journey_messages(
    sendgrid_stand_in, eager, django_capture_on_commit_callbacks, settings
):
    settings.CAMPAIGN_FREQUENCY_CAP = 1
    customer = recipients(1)[0]
    earlier = CampaignFactory(status="sending", segment=None)
    Message.objects.create(
        campaign=earlier,
        customer=customer,
        channel="email",
        idempotency_key="earlier",
        status="sent",
        sent_at=timezone.now(),
    )
    campaign = journey()
    ingest(customer, "add_to_cart", timezone.now())
    journey_events_consume()

    with django_capture_on_commit_callbacks(execute=True):
        journey_entries_decide_due(now=timezone.now() + dt.timedelta(minutes=31))

    message = Message.objects.get(campaign=campaign)
    assert (message.status, message.skip_reason) == ("skipped", "frequency_cap")
    assert JourneyEntry.objects.get(campaign=campaign).status == "skipped"
    assert sendgrid_stand_in.requests == []


def test_an_entry_of_a_customer_erased_meanwhile_is_skipped(
    sendgrid_stand_in, eager, django_capture_on_commit_callbacks
):
    customer = recipients(1)[0]
    campaign = journey()
    ingest(customer, "add_to_cart", timezone.now())
    journey_events_consume()
    Customer.objects.filter(pk=customer.pk).update(erased_at=timezone.now())

    with django_capture_on_commit_callbacks(execute=True):
        journey_entries_decide_due(now=timezone.now() + dt.timedelta(minutes=31))

    assert JourneyEntry.objects.get(campaign=campaign).status == "skipped"
    assert not Message.objects.exists()
    assert sendgrid_stand_in.requests == []


def test_a_paused_journey_takes_nobody_in_and_decides_after_resume(
    sendgrid_stand_in, eager, django_capture_on_commit_callbacks
):
    early, late = recipients(2)
    campaign = journey()
    now = timezone.now()
    ingest(early, "add_to_cart", now)
    journey_events_consume()

    campaign_pause(campaign=campaign)
    ingest(late, "add_to_cart", now)
    journey_events_consume()
    assert journey_entries_decide_due(now=now + dt.timedelta(hours=1)).dispatched == 0
    campaign_resume(campaign=campaign)
    with django_capture_on_commit_callbacks(execute=True):
        journey_entries_decide_due(now=now + dt.timedelta(hours=1))

    assert list(JourneyEntry.objects.values_list("customer_id", "status")) == [(early.pk, "sent")]
    assert sent_to(sendgrid_stand_in) == Counter({early.email: 1})


def test_ending_a_journey_skips_the_waiting_entries():
    customer = recipients(1)[0]
    campaign = journey()
    ingest(customer, "add_to_cart", timezone.now())
    journey_events_consume()

    campaign_end(campaign=campaign)

    campaign.refresh_from_db()
    assert campaign.status == "done"
    assert list(JourneyEntry.objects.values_list("status", flat=True)) == ["skipped"]
    with pytest.raises(CampaignStatusError):
        campaign_end(campaign=campaign)


def test_a_journey_launches_with_a_trigger_event_and_without_a_segment(
    django_capture_on_commit_callbacks,
):
    campaign = CampaignFactory(segment=None, audience_type="trigger", trigger_event_type="")

    with pytest.raises(CampaignNotReadyError, match="event that starts the journey"):
        campaign_launch(campaign=campaign)
    Campaign.objects.filter(pk=campaign.pk).update(trigger_event_type="add_to_cart")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        campaign_launch(campaign=campaign)

    campaign.refresh_from_db()
    assert campaign.status == "sending"
    assert callbacks == []  # no fan-out: a journey has no audience to page through


def test_a_segment_campaign_still_needs_a_segment():
    campaign = CampaignFactory(segment=None)

    with pytest.raises(CampaignNotReadyError, match="segment"):
        campaign_launch(campaign=campaign)

    campaign.refresh_from_db()
    assert campaign.status == "draft"


def test_ingest_wakes_the_journey_consumer_after_commit(django_capture_on_commit_callbacks):
    customer = recipients(1)[0]

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        ingest(customer, "add_to_cart", timezone.now())

    assert "journeys_consume_schedule" in [c.__name__ for c in callbacks]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker_sendgrid_env")
def test_a_journey_end_to_end_through_the_worker(sendgrid_stand_in, celery_worker_process):
    abandoner, buyer = recipients(2, prefix="journey")
    campaign = journey(trigger_delay_minutes=0)
    now = timezone.now()

    events_ingest(
        rows=[
            event(abandoner, "add_to_cart", now),
            event(buyer, "add_to_cart", now),
            event(buyer, "purchase", now + dt.timedelta(seconds=1)),
        ]
    )

    deadline = time.monotonic() + 60
    statuses: dict = {}
    while time.monotonic() < deadline:
        statuses = dict(JourneyEntry.objects.values_list("customer_id", "status"))
        if statuses == {abandoner.pk: "sent", buyer.pk: "exited"}:
            break
        time.sleep(0.2)
    assert statuses == {abandoner.pk: "sent", buyer.pk: "exited"}
    assert sent_to(sendgrid_stand_in) == Counter({abandoner.email: 1})
    message = Message.objects.get(campaign=campaign)
    assert message.status == "sent"
    assert message.idempotency_key.endswith(f":e{message.journey_entry_id}")


def test_an_idle_journey_is_not_finished_by_a_fan_out_page():
    """The sweeper restarts the fan-out of quiet sending campaigns; a journey has none."""
    campaign = journey()

    assert campaign_dispatch_page(campaign_id=campaign.pk, after_pk=0) == 0

    campaign.refresh_from_db()
    assert campaign.status == "sending"

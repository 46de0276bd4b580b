"""Conversion attribution: last touch within the goal window, once per message, held-out rows
tracked for lift, idempotent over the event stream with a watermark."""

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.utils import timezone

from campaigns.conversion_rules import Goal, Touch, conversions_attribute
from campaigns.conversions import WATERMARK_KEY, conversions_attribute_new
from campaigns.models import Message
from campaigns.tasks import conversions_attribute_task
from profiles.models import Event
from tests.campaigns.factories import CampaignFactory
from tests.profiles.factories import CustomerFactory

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)


# --- the rules (no database) ------------------------------------------------------------------


def touch(pk, sent_h_before, *, clicked_h_before=None, goal="purchase", window_h=72, **kw):
    return Touch(
        message_id=pk,
        goal_type=goal,
        reference_at=NOW - sent_h_before * H,
        window=window_h * H,
        clicked_at=NOW - clicked_h_before * H if clicked_h_before is not None else None,
        **kw,
    )


def purchase(pk=1, customer=7, at=NOW, value="10.00", kind="purchase"):
    return Goal(pk, customer, kind, at, Decimal(value))


def test_last_clicked_message_wins_over_a_later_sent_one():
    touches = {
        7: [touch(1, 48, clicked_h_before=40), touch(2, 10), touch(3, 30, clicked_h_before=20)]
    }
    assert conversions_attribute([purchase()], touches) == {3: purchase()}


def test_without_clicks_the_last_sent_message_wins():
    touches = {7: [touch(1, 48), touch(2, 10)]}
    assert list(conversions_attribute([purchase()], touches)) == [2]


def test_a_click_after_the_purchase_does_not_count():
    touches = {7: [touch(1, 48, clicked_h_before=-1), touch(2, 10)]}
    assert list(conversions_attribute([purchase()], touches)) == [2]


@pytest.mark.parametrize(
    ("candidate", "converts"),
    [
        (touch(1, 73), False),  # window over
        (touch(1, -1), False),  # sent after the purchase
        (touch(1, 5, goal="signup"), False),  # another goal
        (touch(1, 5, converted=True), False),  # converted before
        (touch(1, 72), True),  # the window's last moment
    ],
)
def test_window_goal_and_once(candidate, converts):
    assert bool(conversions_attribute([purchase()], {7: [candidate]})) is converts


def test_the_first_of_two_purchases_converts_and_the_credit_does_not_move():
    touches = {7: [touch(1, 48), touch(2, 10)]}
    first, second = purchase(1, at=NOW), purchase(2, at=NOW + H, value="99")
    assert conversions_attribute([second, first], touches) == {2: first}


def test_held_out_rows_convert_alongside_the_last_touch():
    touches = {7: [touch(1, 10), touch(2, 20, control=True), touch(3, 30, control=True)]}
    assert sorted(conversions_attribute([purchase()], touches)) == [1, 2, 3]


# --- the service (database) -------------------------------------------------------------------


@pytest.fixture
def no_watermark():
    cache.delete(WATERMARK_KEY)
    yield
    cache.delete(WATERMARK_KEY)


def message(customer, campaign, *, hours_before, status="sent", skip_reason="", **fields):
    at = timezone.now() - hours_before * H
    row = Message.objects.create(
        campaign=campaign,
        customer=customer,
        channel=campaign.channel,
        idempotency_key=f"{campaign.pk}:0:{customer.pk}:{campaign.channel}",
        status=status,
        skip_reason=skip_reason,
        sent_at=at if status == "sent" else None,
        **fields,
    )
    Message.objects.filter(pk=row.pk).update(created_at=at)
    return row


def event(customer, kind="purchase", *, hours_before=0, value="25.50"):
    return Event.objects.create(
        event_id=uuid.uuid4(),
        customer=customer,
        type=kind,
        value=Decimal(value) if value is not None else None,
        occurred_at=timezone.now() - hours_before * H,
    )


def received(evt, minutes_ago):
    Event.objects.filter(pk=evt.pk).update(
        received_at=timezone.now() - minutes_ago * dt.timedelta(minutes=1)
    )


@pytest.mark.django_db
def test_a_purchase_converts_the_last_touch_once(no_watermark):
    customer = CustomerFactory()
    spring, summer = CampaignFactory(goal_window_hours=48), CampaignFactory(goal_window_hours=48)
    early = message(customer, spring, hours_before=30, clicked_at=timezone.now() - 20 * H)
    late = message(customer, summer, hours_before=5)
    buy = event(customer)
    received(buy, 10)

    first = conversions_attribute_new()
    cache.delete(WATERMARK_KEY)  # a lost watermark reads the same events again
    second = conversions_attribute_new()

    assert (first.events, first.converted, first.watermark) == (1, 1, buy.pk)
    assert (second.events, second.converted) == (1, 0)
    early.refresh_from_db()
    late.refresh_from_db()
    assert (early.converted_at, early.conversion_value) == (buy.occurred_at, Decimal("25.50"))
    assert late.converted_at is None


@pytest.mark.django_db
def test_the_campaign_goal_type_and_the_purchase_default(no_watermark):
    customer = CustomerFactory()
    carts = CampaignFactory(goal_event_type="add_to_cart")
    default = CampaignFactory(goal_event_type="")
    on_cart = message(customer, carts, hours_before=3)
    on_purchase = message(customer, default, hours_before=2)
    received(event(customer, "add_to_cart", hours_before=1, value=None), 10)

    conversions_attribute_new()

    on_cart.refresh_from_db()
    on_purchase.refresh_from_db()
    assert on_cart.converted_at is not None
    assert on_cart.conversion_value is None
    assert on_purchase.converted_at is None


@pytest.mark.django_db
def test_holdout_and_global_control_rows_convert_but_other_skips_and_bounces_do_not(no_watermark):
    customer = CustomerFactory()
    rows = {
        reason: message(
            customer, CampaignFactory(), hours_before=4, status="skipped", skip_reason=reason
        )
        for reason in ("holdout", "global_control", "consent", "frequency_cap")
    }
    bounced = message(customer, CampaignFactory(), hours_before=6, bounced_at=timezone.now())
    received(event(customer), 10)

    conversions_attribute_new()

    converted = {r: Message.objects.get(pk=m.pk).converted_at is not None for r, m in rows.items()}
    assert converted == {
        "holdout": True,
        "global_control": True,
        "consent": False,
        "frequency_cap": False,
    }
    bounced.refresh_from_db()
    assert bounced.converted_at is None


@pytest.mark.django_db
def test_the_watermark_waits_for_events_received_just_now(no_watermark):
    customer = CustomerFactory()
    message(customer, CampaignFactory(), hours_before=2)
    old = event(customer)
    received(old, 10)
    fresh = event(customer, value="5")
    received(fresh, 0)

    result = conversions_attribute_new()

    assert (result.events, result.watermark) == (2, old.pk)
    assert conversions_attribute_new().events == 1  # the fresh one is read again


@pytest.mark.django_db
def test_a_full_batch_asks_for_another_run(no_watermark):
    customer = CustomerFactory()
    message(customer, CampaignFactory(), hours_before=2)
    for _ in range(3):
        received(event(customer), 10)
    first = conversions_attribute_new(batch_size=2)
    second = conversions_attribute_new(batch_size=2)
    assert (first.events, first.more, second.events, second.more) == (2, True, 1, False)
    assert Message.objects.filter(converted_at__isnull=False).count() == 1


@pytest.mark.django_db
def test_the_task_runs_the_service_and_is_idempotent(no_watermark):
    customer = CustomerFactory()
    row = message(customer, CampaignFactory(), hours_before=2)
    received(event(customer, value="7.00"), 10)

    conversions_attribute_task()
    conversions_attribute_task()

    row.refresh_from_db()
    assert row.conversion_value == Decimal("7.00")
    assert Message.objects.filter(converted_at__isnull=False).count() == 1


@pytest.mark.django_db
def test_events_older_than_every_window_are_not_read(no_watermark):
    customer = CustomerFactory()
    CampaignFactory(goal_window_hours=24)
    received(event(customer, hours_before=24 + 8 * 24), 10)
    recent = event(customer, hours_before=1)
    received(recent, 10)

    result = conversions_attribute_new()

    assert (result.events, result.watermark) == (1, recent.pk)

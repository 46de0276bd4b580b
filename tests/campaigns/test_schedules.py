"""Schedules: recurring campaigns (one child occurrence per due time, exactly once, until the
end) and same local time for each recipient (launched when the time first comes on earth,
each recipient deferred to their own local time)."""

import datetime as dt
import threading
import zoneinfo
from collections import Counter

import pytest
from django.db import connection
from django.utils import timezone

from campaigns.dispatch import BatchResult, messages_send_batch
from campaigns.dispatch_rules import (
    local_send_wait_seconds,
    local_time_launch_at,
    next_occurrence,
    occurrence_due,
)
from campaigns.errors import CampaignNotReadyError
from campaigns.lifecycle import (
    campaign_launch,
    campaign_launch_at,
    campaign_occurrence_create,
    campaigns_launch_due,
)
from campaigns.models import Campaign, CampaignVariant, Message
from tests.campaigns.factories import CampaignFactory, MessageTemplateFactory
from tests.campaigns.test_dispatch import pks, recipients, sending_campaign, sent_to

pytestmark = pytest.mark.django_db

UTC = dt.UTC
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


# --- pure rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "zone", "wait"),
    [
        # 09:00 on 2026-03-10 in Tokyo is 00:00 UTC.
        ("2026-03-09T23:00:00+00:00", "Asia/Tokyo", 3600),
        ("2026-03-10T00:00:00+00:00", "Asia/Tokyo", 0),
        ("2026-03-10T05:00:00+00:00", "Asia/Tokyo", 0),  # passed: at once
        # 09:00 in New York on 2026-03-10 (after the DST change of 03-08) is 13:00 UTC.
        ("2026-03-10T12:59:30+00:00", "America/New_York", 30),
        ("2026-03-10T00:00:00+00:00", "Pacific/Kiritimati", 0),  # 09:00 there was 19:00 UTC
    ],
)
def test_local_send_wait_seconds(now, zone, wait):
    assert (
        local_send_wait_seconds(
            dt.datetime.fromisoformat(now),
            on=dt.date(2026, 3, 10),
            at=dt.time(9, 0),
            zone=zoneinfo.ZoneInfo(zone),
        )
        == wait
    )


def test_a_local_time_campaign_launches_when_its_time_first_comes_on_earth():
    launch = local_time_launch_at(on=dt.date(2026, 3, 10), at=dt.time(9, 0))

    assert launch == dt.datetime(2026, 3, 9, 19, 0, tzinfo=UTC)
    kiritimati = zoneinfo.ZoneInfo("Pacific/Kiritimati")
    local = launch.astimezone(kiritimati)
    assert (local.date(), local.time()) == (dt.date(2026, 3, 10), dt.time(9, 0))


def test_next_occurrence_keeps_the_wall_clock_time_across_dst():
    # 09:00 in Berlin on Saturday 2026-03-28 (UTC+1); DST starts on Sunday the 29th (UTC+2).
    saturday = dt.datetime(2026, 3, 28, 8, 0, tzinfo=UTC)

    daily = next_occurrence(saturday, recurrence="daily", zone=BERLIN)
    weekly = next_occurrence(saturday, recurrence="weekly", zone=BERLIN)

    assert daily == dt.datetime(2026, 3, 29, 7, 0, tzinfo=UTC)
    assert weekly == dt.datetime(2026, 4, 4, 7, 0, tzinfo=UTC)
    assert daily.astimezone(BERLIN).hour == weekly.astimezone(BERLIN).hour == 9


def test_occurrences_missed_entirely_are_passed_over():
    first = dt.datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    now = dt.datetime(2026, 1, 4, 10, 0, tzinfo=UTC)

    due, following = occurrence_due(first, now, recurrence="daily", zone=UTC)

    assert due == dt.datetime(2026, 1, 4, 9, 0, tzinfo=UTC)
    assert following == dt.datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


# --- recurring ------------------------------------------------------------------------------


def recurring(first, *, until=None, recurrence="daily", **fields):
    customers = recipients(2, prefix=fields.pop("prefix", "rec"))
    campaign = sending_campaign(
        customers,
        name=fields.pop("name", "Weekly picks"),
        status="scheduled",
        schedule_type="recurring",
        recurrence=recurrence,
        scheduled_at=first,
        recurrence_until=until,
        **fields,
    )
    CampaignVariant.objects.create(
        campaign=campaign, name="A", template=campaign.template, weight=3
    )
    CampaignVariant.objects.create(
        campaign=campaign, name="B", template=MessageTemplateFactory(), weight=1
    )
    return campaign


def test_each_due_occurrence_is_a_launched_copy_made_once(django_capture_on_commit_callbacks):
    now = timezone.now()
    first = now - dt.timedelta(minutes=1)
    parent = recurring(first, until=first + dt.timedelta(days=2, hours=12))

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert campaigns_launch_due(now=now) == 1
        assert campaigns_launch_due(now=now) == 0  # the beat again: nothing new

    child = Campaign.objects.get(parent=parent)
    assert child.name == f"Weekly picks — {first.date().isoformat()}"
    assert (child.status, child.schedule_type, child.scheduled_at) == ("sending", "at", first)
    assert (child.segment_id, child.channel, child.template_id) == (
        parent.segment_id,
        parent.channel,
        parent.template_id,
    )
    assert list(child.variants.values_list("name", "template_id", "weight")) == list(
        parent.variants.values_list("name", "template_id", "weight")
    )
    assert len(callbacks) == 1  # the child's fan-out
    parent.refresh_from_db()
    assert (parent.status, parent.scheduled_at) == ("scheduled", first + dt.timedelta(days=1))


def test_the_parent_is_done_after_its_last_occurrence():
    now = timezone.now()
    first = now - dt.timedelta(minutes=1)
    parent = recurring(first, until=first + dt.timedelta(days=2, hours=12))

    for day in range(4):
        campaigns_launch_due(now=now + dt.timedelta(days=day))

    children = Campaign.objects.filter(parent=parent).order_by("scheduled_at")
    assert [c.scheduled_at for c in children] == [first + dt.timedelta(days=d) for d in range(3)]
    parent.refresh_from_db()
    assert parent.status == "done"
    assert parent.finished_at is not None


def test_a_weekly_campaign_waits_a_week():
    now = timezone.now()
    parent = recurring(now - dt.timedelta(minutes=1), recurrence="weekly")

    assert campaigns_launch_due(now=now) == 1
    assert campaigns_launch_due(now=now + dt.timedelta(days=6)) == 0
    assert campaigns_launch_due(now=now + dt.timedelta(days=7)) == 1
    assert Campaign.objects.filter(parent=parent).count() == 2


@pytest.mark.django_db(transaction=True)
def test_two_beats_at_once_make_one_occurrence():
    now = timezone.now()
    parent = recurring(now - dt.timedelta(minutes=1))
    made = []

    def beat():
        try:
            made.append(campaign_occurrence_create(parent=parent.pk, now=now))
        finally:
            connection.close()

    threads = [threading.Thread(target=beat) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(child is None for child in made) == [False, True]
    assert Campaign.objects.filter(parent=parent).count() == 1


def test_a_recurring_campaign_is_not_launched_itself():
    parent = recurring(timezone.now() + dt.timedelta(hours=1))

    with pytest.raises(CampaignNotReadyError, match="recurring"):
        campaign_launch(campaign=parent)

    parent.refresh_from_db()
    assert parent.status == "scheduled"
    assert not Campaign.objects.filter(parent=parent).exists()


# --- same local time ------------------------------------------------------------------------


def local_time_campaign(customers, *, on, at, **fields):
    return sending_campaign(
        customers,
        name=fields.pop("name", "Morning"),
        schedule_type="local_time",
        scheduled_at=dt.datetime.combine(on, dt.time(0, 0), tzinfo=UTC),
        send_local_time=at,
        **fields,
    )


def test_launch_time_of_a_local_time_campaign():
    campaign = local_time_campaign(
        recipients(1), on=dt.date(2026, 3, 10), at=dt.time(9, 0), status="scheduled"
    )

    assert campaign_launch_at(campaign) == dt.datetime(2026, 3, 9, 19, 0, tzinfo=UTC)


def test_a_local_time_campaign_launches_early_enough(django_capture_on_commit_callbacks):
    today = timezone.now().date()
    tomorrow = today + dt.timedelta(days=1)
    campaign = local_time_campaign(recipients(1), on=tomorrow, at=dt.time(9, 0), status="scheduled")
    launch = dt.datetime.combine(today, dt.time(19, 0), tzinfo=UTC)

    assert campaigns_launch_due(now=launch - dt.timedelta(minutes=1)) == 0
    assert campaigns_launch_due(now=launch) == 1

    campaign.refresh_from_db()
    assert campaign.status == "sending"


def test_each_recipient_waits_for_their_own_local_time(sendgrid_stand_in):
    # Noon today (UTC date): already past in UTC+14, still ahead in UTC-12.
    east = recipients(1, prefix="east", timezone="Pacific/Kiritimati")[0]
    west = recipients(1, prefix="west", timezone="Etc/GMT+12")[0]
    today = timezone.now().date()
    campaign = local_time_campaign([east, west], on=today, at=dt.time(12, 0))

    result = messages_send_batch(campaign=campaign, customer_ids=pks([east, west]))

    assert result == BatchResult(sent=1, deferred=1)
    assert sent_to(sendgrid_stand_in) == Counter({east.email: 1})
    assert not Message.objects.filter(customer=west).exists()

    # The deferred batch runs after the fan-out finished (the campaign is done by then) and,
    # once the recipient's local time has come (moved a day back here), sends.
    yesterday = dt.datetime.combine(today - dt.timedelta(days=1), dt.time(0, 0), tzinfo=UTC)
    Campaign.objects.filter(pk=campaign.pk).update(status="done", scheduled_at=yesterday)
    campaign.refresh_from_db()
    later = messages_send_batch(campaign=campaign, customer_ids=[west.pk])

    assert later == BatchResult(sent=1)
    assert sent_to(sendgrid_stand_in) == Counter({east.email: 1, west.email: 1})


def test_a_cancelled_campaign_sends_no_deferred_batch(sendgrid_stand_in):
    customers = recipients(1)
    campaign = CampaignFactory(status="cancelled", segment=None)

    assert messages_send_batch(campaign=campaign, customer_ids=pks(customers)) == BatchResult()
    assert sendgrid_stand_in.requests == []

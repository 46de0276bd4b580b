"""`manage.py demo_campaigns`: the demo's Weekly picks sent through dispatch, with reactions
drawn from the simulated store's hidden tastes, recorded by the tracking services."""

import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from campaigns.journeys import journey_events_consume
from campaigns.models import Campaign, JourneyEntry, Message
from campaigns.selectors import campaign_report
from marketing.simulation.demo_campaigns import reactions_draw
from marketing.simulation.load import store_simulate
from marketing.simulation.store import StoreConfig
from profiles.models import Event

pytestmark = pytest.mark.django_db
DAYS = 30
ARGS = ["--customers", "600", "--items", "60", "--seed", "7"]


@pytest.fixture
def demo_store(settings, tmp_path):
    """A small simulated store ending today (the demo segments look at the last 30 days),
    trained, with the file outbox."""
    settings.CAMPAIGN_EMAIL_BACKEND = "file"
    settings.CAMPAIGN_OUTBOX_DIR = str(tmp_path / "outbox")
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    config = StoreConfig(
        customers=600, items=60, days=DAYS, seed=7, start=start - timedelta(days=DAYS)
    )
    store_simulate(config=config, reset=True)
    call_command("train_models", stdout=StringIO())
    return tmp_path / "outbox"


def _counts() -> dict:
    return {
        "campaigns": sorted(Campaign.objects.values_list("name", "status")),
        "messages": Message.objects.count(),
        "events": Event.objects.count(),
        "converted": Message.objects.filter(converted_at__isnull=False).count(),
    }


def test_weekly_picks_is_sent_and_its_report_shows_opens_clicks_and_conversions(
    demo_store, marketer_client
):
    out = StringIO()
    call_command("demo_campaigns", *ARGS, stdout=out)

    weekly = Campaign.objects.get(name="Weekly picks")
    report = campaign_report(campaign=weekly)
    total = report.total
    assert "Demo campaigns ready" in out.getvalue()
    assert weekly.status == "done"
    assert weekly.holdout_percent == 10
    assert (weekly.goal_event_type, weekly.goal_window_hours) == ("purchase", 72)
    assert [v.name for v in report.variants] == ["A", "B"]
    assert total.sent > 0
    assert total.delivered + total.bounced == total.sent
    assert total.opened > 0
    assert total.clicked > 0
    assert total.converted > 0
    assert total.holdout > 0
    assert all(v.sent > 0 for v in report.variants)
    # Sent through the file provider: one JSON line per sent message.
    lines = (demo_store / "email.jsonl").read_text().splitlines()
    assert len(lines) == total.sent
    assert {json.loads(line)["to"] for line in lines} == set(
        Message.objects.filter(campaign=weekly, status="sent").values_list("address", flat=True)
    )
    # The tracking services wrote the profile events; purchases converted the messages.
    assert Event.objects.filter(type="email_open", campaign_id=weekly.pk).count() == total.opened
    assert Event.objects.filter(type="email_click", campaign_id=weekly.pk).count() == (
        total.clicked
    )
    assert dict(Campaign.objects.exclude(name="Weekly picks").values_list("name", "status")) == {
        "Flash sale": "draft",
        "Abandoned cart": "sending",
        "Weekend deals": "scheduled",
    }
    page = marketer_client.get(reverse("campaigns:campaign-report", args=[weekly.pk]))
    assert page.status_code == 200
    assert page.context["report"].total == total
    journey = Campaign.objects.get(name="Abandoned cart")
    # Clickers who did not buy left carts, which the journey (active before the send) takes.
    carts = Event.objects.filter(type="add_to_cart", occurred_at__gte=weekly.sent_at)
    assert carts.count() > 0
    journey_events_consume()
    assert JourneyEntry.objects.filter(campaign=journey).count() == carts.count()
    assert (journey.trigger_event_type, journey.trigger_exit_event_type) == (
        "add_to_cart",
        "purchase",
    )
    assert journey.trigger_delay_minutes == 60
    recurring = Campaign.objects.get(name="Weekend deals")
    assert (recurring.schedule_type, recurring.recurrence) == ("recurring", "weekly")


def test_a_second_run_adds_nothing(demo_store):
    call_command("demo_campaigns", *ARGS, stdout=StringIO())
    before = _counts()
    sent_lines = len((demo_store / "email.jsonl").read_text().splitlines())

    out = StringIO()
    call_command("demo_campaigns", *ARGS, stdout=out)

    assert "already sent" in out.getvalue()
    assert _counts() == before
    assert len((demo_store / "email.jsonl").read_text().splitlines()) == sent_lines


def test_store_simulated_anew_sends_weekly_picks_again(demo_store):
    call_command("demo_campaigns", *ARGS, stdout=StringIO())
    first = campaign_report(campaign=Campaign.objects.get(name="Weekly picks")).total

    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    config = StoreConfig(
        customers=600, items=60, days=DAYS, seed=7, start=start - timedelta(days=DAYS)
    )
    store_simulate(config=config, reset=True)
    assert Campaign.objects.get(name="Weekly picks").status == "draft"
    call_command("demo_campaigns", *ARGS, stdout=StringIO())

    again = campaign_report(campaign=Campaign.objects.get(name="Weekly picks")).total
    assert first.sent > 0
    assert again.sent > 0
    assert again.holdout > 0
    assert again.opened > 0
    assert Message.objects.count() == again.sent + again.holdout  # the old ones went
    assert Campaign.objects.filter(name="Weekly picks").count() == 1


def test_the_command_refuses_a_store_of_another_size(demo_store):
    with pytest.raises(CommandError, match="No simulated customer c0001000"):
        call_command("demo_campaigns", "--customers", "1000", stdout=StringIO())
    assert Message.objects.count() == 0


def test_variant_b_opens_more_when_the_named_item_is_liked():
    rng = np.random.default_rng(0)
    n, items = 4000, 20
    affinity = np.tile(np.linspace(-2, 2, items), (n, 1))
    liked = np.tile(np.array([19, 18, 17]), (n, 1))
    disliked = np.tile(np.array([0, 1, 2]), (n, 1))
    everyone = np.ones(n, dtype=bool)

    def draw(shown, variant_b):
        return reactions_draw(
            affinity=affinity,
            shown=shown,
            variant_b=np.full(n, variant_b),
            treated=everyone,
            rng=np.random.default_rng(rng.integers(1 << 32)),
            horizon_seconds=72_000,
        )

    def opens(r):
        return int((~np.isnan(r.opened_after)).sum())

    def clicks(r):
        return int((r.clicked >= 0).sum())

    assert opens(draw(liked, True)) > opens(draw(liked, False)) > opens(draw(disliked, True))
    liked_b = draw(liked, True)
    assert clicks(liked_b) > clicks(draw(disliked, True))
    assert np.all(np.isin(liked_b.clicked, [-1, 0, 1, 2]))
    clicked = liked_b.clicked >= 0
    assert np.all(liked_b.clicked_after[clicked] > liked_b.opened_after[clicked])
    bought = liked_b.bought >= 0
    assert np.all(liked_b.bought_after[bought] <= 72_000)
    held_out = reactions_draw(
        affinity=affinity,
        shown=liked,
        variant_b=np.full(n, True),
        treated=np.zeros(n, dtype=bool),
        rng=np.random.default_rng(1),
        horizon_seconds=72_000,
    )
    assert opens(held_out) == 0
    assert not held_out.bounced.any()
    assert 0 < int((held_out.bought >= 0).sum()) < int(bought.sum())

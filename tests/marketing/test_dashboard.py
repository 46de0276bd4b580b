import datetime as dt
import json
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Message
from marketing import rollups
from marketing.dashboard import dashboard_for_window
from tests.campaigns.factories import CampaignFactory
from tests.profiles.factories import CustomerFactory, EventFactory

pytestmark = pytest.mark.django_db


def settled_now() -> dt.datetime:
    return timezone.now() + dt.timedelta(seconds=rollups.SETTLE_SECONDS + 1)


@pytest.fixture
def recent_events():
    """Two views, a purchase and an offer shown and clicked, ten minutes ago, counted live."""
    assert rollups.rollup_events_consume(now=settled_now()).events == 0
    at = timezone.now() - dt.timedelta(minutes=10)
    alice, bob = CustomerFactory(), CustomerFactory()
    EventFactory(customer=alice, type="view", item_external_id="sku-1", occurred_at=at)
    EventFactory(customer=bob, type="view", item_external_id="sku-1", occurred_at=at)
    EventFactory(
        customer=bob, type="purchase", item_external_id="sku-1", value=Decimal("40.00"),
        occurred_at=at,
    )  # fmt: skip
    EventFactory(customer=alice, type="offer_shown", item_external_id="offer-1", occurred_at=at)
    EventFactory(customer=alice, type="offer_shown", item_external_id="offer-1", occurred_at=at)
    EventFactory(customer=alice, type="offer_click", item_external_id="offer-1", occurred_at=at)
    assert rollups.rollup_events_consume(now=settled_now()).events == 6
    return at


def test_dashboard_hour_window_shows_the_rollup_figures_with_links(marketer_client, recent_events):
    rollups.rollups_flush()
    response = marketer_client.get(reverse("dashboard"))
    assert response.status_code == 200
    board = response.context["board"]
    assert board.grain == "minute"
    assert len(board.buckets) == 60
    assert board.events_total == 6
    assert board.active_customers == 2
    assert board.conversions == 1
    assert board.revenue == 40.0
    assert board.offer_ctr == 0.5
    assert board.top_items == [("sku-1", 2.0, 1.0)]
    assert board.top_offers == [("offer-1", 2.0, 1.0, 0.5)]
    page = response.content.decode()
    assert 'hx-trigger="every 10s"' in page
    assert f'href="{reverse("recommender:offer-list")}?q=offer-1"' in page
    assert f'href="{reverse("experiments:attribution")}' in page
    assert f'href="{reverse("insights:post-list")}"' in page
    events_chart = json.loads(response.context["charts"]["events"])
    view = next(t for t in events_chart if t["name"] == "view")
    assert view["showlegend"] is False
    assert view["text"][-1] == "view"  # the direct label at the line's end
    assert sum(view["y"]) == 2


def test_dashboard_adds_the_minutes_not_flushed_yet(analyst_client, recent_events):
    response = analyst_client.get(reverse("dashboard"))
    assert response.context["board"].events_total == 6
    assert response.context["board"].revenue == 40.0


@pytest.mark.parametrize(("window", "grain", "buckets"), [("day", "hour", 25), ("30d", "day", 31)])
def test_dashboard_longer_windows_read_hour_and_day_rollups(
    marketer_client, recent_events, window, grain, buckets
):
    rollups.rollups_flush()
    response = marketer_client.get(reverse("dashboard"), {"window": window})
    board = response.context["board"]
    assert (board.grain, len(board.buckets)) == (grain, buckets)
    assert board.events_total == 6
    assert board.active_customers == 2
    assert board.top_items == [("sku-1", 2.0, 1.0)]


def test_dashboard_messages_funnel_by_channel_links_to_campaigns(marketer_client):
    campaign = CampaignFactory(name="Black Friday", status="sending")
    now = timezone.now()
    for i in range(3):
        Message.objects.create(
            campaign=campaign, customer=CustomerFactory(), channel="email", idempotency_key=f"k{i}",
            sent_at=now, opened_at=now if i else None,
        )  # fmt: skip
    rollups.rollups_flush()
    response = marketer_client.get(reverse("dashboard"))
    assert response.context["board"].message_rows == [("email", [3.0, 0.0, 2.0, 0.0, 0.0])]
    page = response.content.decode()
    assert f'href="{reverse("campaigns:campaign-list")}?channel=email"' in page
    assert f'href="{reverse("campaigns:campaign-detail", args=[campaign.pk])}"' in page
    assert response.context["panels"].campaigns_running_count == 1
    bars = json.loads(response.context["charts"]["messages"])
    assert bars[0]["text"] == ["email 3", "email 2"]


def test_dashboard_poll_renders_the_live_fragment_without_reading_events(
    marketer_client, recent_events, django_assert_num_queries
):
    rollups.rollups_flush()
    with CaptureQueriesContext(connection) as queries:
        response = marketer_client.get(
            reverse("dashboard"), {"window": "day"}, headers={"HX-Request": "true"}
        )
    assert response.status_code == 200
    page = response.content.decode()
    assert page.lstrip().startswith('<div id="dashboard-live"')
    assert "<h1>" not in page
    assert not [q for q in queries.captured_queries if "profiles_event" in q["sql"]]
    # session, user, rollups, top items, top offers, 3 campaign, 2 experiment, role check,
    # brand health panel (brands; their mentions when there are some; open alerts)
    with django_assert_num_queries(13):
        marketer_client.get(reverse("dashboard"), headers={"HX-Request": "true"})


def test_dashboard_empty_state(analyst_client):
    response = analyst_client.get(reverse("dashboard"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "No events in this window." in page
    assert "No offers shown in this window." in page
    assert "No recommendations served through the API in this window yet." in page


def test_dashboard_rejects_an_unknown_window(marketer_client):
    response = marketer_client.get(reverse("dashboard"), {"window": "year"})
    assert response.status_code == 400
    assert "window" in response.context["form"].errors
    assert b'role="alert"' in response.content


def test_active_customers_fall_back_to_the_busiest_bucket_without_hyperloglogs(recent_events):
    rollups.rollups_flush()
    client = rollups.redis_client()
    client.delete(*client.keys(rollups.redis_name("rollups:hll:*")))
    board = dashboard_for_window(window="day")
    assert (board.active_customers, board.active_exact) == (2, False)


def test_events_stamped_in_the_future_wait_for_their_time():
    assert rollups.rollup_events_consume(now=settled_now()).events == 0
    EventFactory(type="view", occurred_at=timezone.now() + dt.timedelta(minutes=30))
    rollups.rollup_events_consume(now=settled_now())
    assert dashboard_for_window(window="hour").events_total == 0
    rollups.rollups_flush()
    assert dashboard_for_window(window="hour").events_total == 0
    later = timezone.now() + dt.timedelta(minutes=31)
    assert dashboard_for_window(window="hour", now=later).events_total == 1

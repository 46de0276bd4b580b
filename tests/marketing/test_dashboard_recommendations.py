"""The dashboard's recommendation panel: served lists counted by the API, clicks on
recommended items by the event consumer, coverage and diversity from the rollups."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from marketing import rollups
from marketing.dashboard import dashboard_for_window
from marketing.rollups_models import MetricRollup
from tests.profiles.factories import CustomerFactory, EventFactory
from tests.recommender.factories import ItemFactory

pytestmark = pytest.mark.django_db


def settled_now() -> dt.datetime:
    return timezone.now() + dt.timedelta(seconds=rollups.SETTLE_SECONDS + 1)


@pytest.mark.parametrize(
    ("categories", "diversity"),
    [
        (["shoes"], 0.0),
        (["shoes", "shoes", "shoes"], 0.0),
        (["shoes", "hats"], 1.0),
        (["shoes", "shoes", "hats", "bags"], 5 / 6),  # 1 alike pair of 6
    ],
)
def test_category_diversity_is_the_share_of_pairs_from_different_categories(categories, diversity):
    assert rollups.category_diversity(categories) == pytest.approx(diversity)


@pytest.fixture
def served():
    """Two lists served ten minutes ago: 3 items (2 categories) and 2 items (1 category),
    4 distinct items; one click on a recommended item, one ordinary click."""
    assert rollups.rollup_events_consume(now=settled_now()).events == 0
    at = timezone.now() - dt.timedelta(minutes=10)
    for n in range(8):
        ItemFactory(external_id=f"sku-{n}", category="shoes" if n % 2 else "hats")
    ItemFactory(external_id="sku-old", is_active=False)
    rollups.rollup_recommendations_served(
        items=[("sku-1", "shoes"), ("sku-2", "hats"), ("sku-3", "shoes")], now=at
    )
    rollups.rollup_recommendations_served(items=[("sku-1", "shoes"), ("sku-5", "shoes")], now=at)
    customer = CustomerFactory()
    EventFactory(
        customer=customer, type="click", item_external_id="sku-2", occurred_at=at,
        properties={"rec_id": "r-1"},
    )  # fmt: skip
    EventFactory(
        customer=customer, type="view", item_external_id="sku-5", occurred_at=at,
        properties={"source": "rec_home"},
    )  # fmt: skip
    EventFactory(
        customer=customer, type="click", item_external_id="sku-7", occurred_at=at,
        properties={"source": "search"},
    )  # fmt: skip
    EventFactory(
        customer=customer, type="purchase", item_external_id="sku-2", occurred_at=at,
        properties={"rec_id": "r-1"},
    )  # fmt: skip
    assert rollups.rollup_events_consume(now=settled_now()).events == 4
    return at


def _assert_panel(board, *, exact: bool = True):
    assert board.rec_lists == 2
    assert board.rec_impressions == 5
    assert board.rec_clicks == 2  # the rec_id click and the rec_ view; not search, not purchase
    assert board.rec_ctr == pytest.approx(2 / 5)
    # list 1: 2 of 3 pairs differ; list 2: none of 1
    assert board.rec_diversity == pytest.approx((2 / 3 + 0) / 2)
    assert board.catalog_items == 8
    assert (board.rec_distinct_items, board.rec_distinct_exact) == (4, exact)
    assert board.rec_coverage == pytest.approx(4 / 8)
    assert board.rec_distinct_share == pytest.approx(4 / 5)


@pytest.mark.parametrize("window", ["hour", "day", "30d"])
def test_panel_reads_live_counters_and_flushed_rollups(served, window):
    _assert_panel(dashboard_for_window(window=window))  # live, not flushed yet
    rollups.rollups_flush()
    _assert_panel(dashboard_for_window(window=window))
    day_rows = MetricRollup.objects.filter(grain="day", metric__startswith="rec_")
    assert dict(day_rows.values_list("metric", "value")) == {
        "rec_lists": 2.0, "rec_items": 5.0, "rec_ild": pytest.approx(2 / 3),
        "rec_ild_lists": 2.0, "rec_clicks": 2.0, "rec_distinct": 4.0,
    }  # fmt: skip


def test_coverage_falls_back_to_the_busiest_bucket_without_hyperloglogs(served):
    rollups.rollups_flush()
    client = rollups.redis_client()
    client.delete(*client.keys(rollups.redis_name("rollups:rechll:*")))
    _assert_panel(dashboard_for_window(window="day"), exact=False)


def test_rebuild_keeps_the_served_counts_and_recounts_the_clicks(served):
    rollups.rollups_flush()
    MetricRollup.objects.filter(metric="rec_clicks").delete()
    rollups.rollups_rebuild(days=35)
    _assert_panel(dashboard_for_window(window="day"))
    assert MetricRollup.objects.get(grain="minute", metric="rec_clicks").value == 2


def test_recommendations_api_counts_the_lists_it_serves(storefront_client):
    for n in range(4):
        ItemFactory(external_id=f"sku-{n}", category="shoes" if n < 2 else "hats")
    url = reverse("api:customer-recommendations", args=["anyone"])
    first = storefront_client.get(url, {"k": 4})
    assert first.status_code == 200
    assert len(first.json()["items"]) == 4
    similar = storefront_client.get(reverse("api:item-similar", args=["sku-0"]), {"k": 2})
    assert similar.status_code == 200
    served_items = len(similar.json()["items"])
    board = dashboard_for_window(window="hour")
    assert board.rec_lists == 2
    assert board.rec_impressions == 4 + served_items
    assert board.rec_distinct_items == 4
    assert board.rec_coverage == 1.0
    assert board.rec_diversity is not None


def test_panel_links_to_the_recommender_pages_and_the_clicks(marketer_client, served):
    rollups.rollups_flush()
    page = marketer_client.get(reverse("dashboard")).content.decode()
    assert '<section class="card" id="panel-recommendations">' in page
    assert f'href="{reverse("recommender:modelversion-list")}"' in page
    assert f'href="{reverse("recommender:item-list")}"' in page
    assert f'href="{reverse("profiles:event-list")}?rec=on&amp;window=hour">2</a>' in page
    assert "40.0 %" in page  # CTR
    assert "50.0 %" in page  # coverage

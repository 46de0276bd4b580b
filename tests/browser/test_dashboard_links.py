"""From a dashboard number to the list behind it in Chromium: the recommendation panel's
clicks open the events list filtered to them; the list pages by "Older" through htmx."""

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from marketing import rollups
from tests.profiles.factories import CustomerFactory, EventFactory
from tests.recommender.factories import ItemFactory

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def recommended():
    rollups.rollup_events_consume(now=timezone.now() + dt.timedelta(seconds=10))
    at = timezone.now() - dt.timedelta(minutes=3)
    ItemFactory(external_id="sku-a", category="shoes")
    ItemFactory(external_id="sku-b", category="hats")
    rollups.rollup_recommendations_served(items=[("sku-a", "shoes"), ("sku-b", "hats")], now=at)
    customer = CustomerFactory(external_id="shopper-1")
    EventFactory(customer=customer, type="click", item_external_id="sku-a", occurred_at=at,
                 properties={"rec_id": "r-1"})  # fmt: skip
    for n in range(55):
        EventFactory(customer=customer, type="view", occurred_at=at - dt.timedelta(seconds=n))
    rollups.rollup_events_consume(now=timezone.now() + dt.timedelta(seconds=10))


def test_recommendation_clicks_open_their_events_and_the_list_pages(
    marketer_page, live_server, recommended, screenshot_dir
):
    page = marketer_page
    page.goto(f"{live_server.url}/")
    panel = page.locator("#panel-recommendations")
    expect(panel).to_contain_text("CTR of recommended items")
    expect(panel).to_contain_text("50.0 %")  # 1 click of 2 items served
    if screenshot_dir:
        page.screenshot(path=str(screenshot_dir / "dashboard-recommendations.png"), full_page=True)
    panel.locator('a[href*="rec=on"]').first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Events")
    rows = page.locator("#event-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("shopper-1")
    expect(page.get_by_label("Clicks on recommendations")).to_be_checked()

    page.get_by_label("Clicks on recommendations").uncheck()  # htmx swaps the table
    expect(rows).to_have_count(50)
    page.get_by_role("link", name="Older →").click()
    expect(rows).to_have_count(6)
    expect(page.locator("#event-table")).to_contain_text("No older events in this window.")
    if screenshot_dir:
        page.screenshot(path=str(screenshot_dir / "events-older.png"), full_page=True)
    assert page.console_errors == []

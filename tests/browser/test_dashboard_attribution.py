"""The live dashboard and the Attribution page in Chromium, on a small simulated store whose
history ends today: charts drawn, the window switched, the live part refreshed by its htmx
poll after new events are counted, attribution compared and exported."""

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from marketing import rollups
from marketing.simulation.load import store_simulate
from marketing.simulation.store import StoreConfig
from tests.profiles.factories import EventFactory

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def store():
    start = (timezone.now() - dt.timedelta(days=29)).replace(hour=0, minute=0, second=0)
    store_simulate(
        config=StoreConfig(customers=300, items=60, days=30, seed=3, start=start), reset=True
    )
    rollups.rollups_rebuild(days=35)


def test_dashboard_windows_charts_and_live_refresh(marketer_page, live_server, store):
    page = marketer_page
    page.goto(f"{live_server.url}/")
    expect(page.locator("#dashboard-live")).to_contain_text("Last hour")
    page.get_by_role("link", name="Last 30 days").click()
    expect(page.locator("#chart-events .main-svg").first).to_be_visible()
    expect(page.locator("#dashboard-live")).to_contain_text("Last 30 days")
    expect(page.locator("#chart-revenue .main-svg").first).to_be_visible()
    expect(page.locator("#dashboard-live")).to_contain_text("Top items")

    page.get_by_role("link", name="Last hour").click()
    stat = page.locator("#dashboard-live .stat").first
    before = int(stat.locator("b").inner_text().replace(",", ""))
    EventFactory.create_batch(3, type="custom", occurred_at=timezone.now())
    rollups.rollup_events_consume(now=timezone.now() + dt.timedelta(seconds=10))
    expect(stat.locator("b")).to_have_text(f"{before + 3:,}", timeout=15_000)
    expect(page.locator("#chart-events .main-svg").first).to_be_visible()
    assert page.console_errors == []


def test_attribution_compares_models_and_exports(marketer_page, live_server, store):
    page = marketer_page
    page.goto(f"{live_server.url}/")
    page.get_by_role("link", name="Attribution").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Attribution")
    expect(page.locator("#attribution-chart .main-svg").first).to_be_visible()
    expect(page.locator("#attribution-report table").first).to_contain_text("direct")
    page.get_by_label("Period").select_option("7")
    expect(page).to_have_url(
        f"{live_server.url}/attribution/?period=7&goal=purchase&lookback_days=30&half_life_days=7"
    )
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    header = download.value.path().read_text().splitlines()[0]
    assert header == "level,name,model,credit,conversions,cost,roi"
    assert page.console_errors == []

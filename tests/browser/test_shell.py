"""The marketer UI end to end in a real browser: login, every page, htmx search, admin, docs."""

import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone
from playwright.sync_api import expect

from marketing.roles import MARKETER, roles_sync
from marketing.rollups import rollups_rebuild
from tests.campaigns.factories import CampaignFactory
from tests.experiments.factories import ExperimentFactory, VariantFactory
from tests.insights.factories import PostFactory
from tests.profiles.factories import CustomerFactory, EventFactory, SegmentFactory
from tests.recommender.factories import ItemFactory, ModelVersionFactory, OfferFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-12345-secret"

# nav label, page heading, one object the page must show
PAGES = [
    ("Customers", "Customers", "shop-ada"),
    ("Segments", "Segments", "VIP buyers"),
    ("Catalog", "Catalog", "Red running shoe"),
    ("Recommendations", "Recommendations", "Popularity"),
    ("Offers", "Offers", "Summer sale"),
    ("Campaigns", "Campaigns", "Spring newsletter"),
    ("Experiments", "Experiments", "Banner test"),
    ("Insights", "Insights", "Loving the new running shoes"),
    ("Dashboard", "Dashboard", "customers"),
]


@pytest.fixture
def shop_data(django_user_model):
    roles_sync()
    user = django_user_model.objects.create_user(username="mara", password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=MARKETER))
    ada = CustomerFactory(external_id="shop-ada", first_name="Ada", last_name="Lovelace")
    now = timezone.now()
    for days, kind in [(0, "view"), (1, "view"), (1, "purchase"), (2, "add_to_cart")]:
        EventFactory(customer=ada, type=kind, occurred_at=now - dt.timedelta(days=days))
    rollups_rebuild(days=35)  # the dashboard reads rollups, which ingestion keeps (not factories)
    SegmentFactory(name="VIP buyers", member_count=12)
    red = ItemFactory(external_id="sku-red", title="Red running shoe", category="shoes")
    ItemFactory(external_id="sku-hat", title="Blue hat", category="hats")
    ItemFactory(external_id="sku-sock", title="Green socks", category="socks")
    ModelVersionFactory(
        is_active=True,
        artifact={"item_ids": ["sku-red", "sku-hat"], "scores": [3.0, 1.0]},
        metrics={"precision@10": 0.2},
    )
    OfferFactory(name="Summer sale", item=red)
    CampaignFactory(name="Spring newsletter")
    experiment = ExperimentFactory(name="Banner test", status="running")
    VariantFactory(experiment=experiment, name="control", is_control=True)
    VariantFactory(experiment=experiment, name="red banner")
    PostFactory(text="Loving the new running shoes")
    return user


def test_marketer_walks_through_the_shell(page, live_server, shop_data, screenshot_dir):
    base = live_server.url

    # Every page needs a login; the form brings the user back to the dashboard.
    page.goto(f"{base}/")
    expect(page).to_have_url(f"{base}/accounts/login/?next=/")
    page.get_by_label("Username").fill("mara")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{base}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")

    # htmx and plotly come from our own static files; the chart renders the events.
    assert page.evaluate("typeof htmx") == "object"
    assert page.evaluate("htmx.version") == "2.0.8"
    assert page.request.get(f"{base}/static/vendor/htmx.min.js").status == 200
    expect(page.locator("#chart-events .main-svg").first).to_be_visible()
    if screenshot_dir:
        page.screenshot(path=screenshot_dir / "shell-dashboard.png", full_page=True)

    nav = page.get_by_role("navigation", name="Main")
    for label, heading, text in PAGES:
        nav.get_by_role("link", name=label, exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        expect(nav.get_by_role("link", name=label, exact=True)).to_have_attribute(
            "aria-current", "page"
        )
        expect(page.locator("main")).to_contain_text(text)
        if screenshot_dir:
            page.screenshot(path=screenshot_dir / f"shell-{label.lower()}.png", full_page=True)

    # The catalog search swaps the table in place (no page load) and updates the URL.
    nav.get_by_role("link", name="Catalog", exact=True).click()
    rows = page.locator("#item-table tbody tr")
    expect(rows).to_have_count(3)
    page.evaluate("window.__samePage = true")
    page.get_by_role("searchbox", name="Search catalog").fill("red")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Red running shoe")
    expect(page).to_have_url(f"{base}/catalog/?q=red&category=&in_stock=&is_active=")
    page.get_by_label("Category").select_option("hats")
    expect(page.locator("#item-table")).to_contain_text("No items match these filters.")
    page.get_by_role("searchbox", name="Search catalog").fill("")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Blue hat")
    assert page.evaluate("window.__samePage") is True
    if screenshot_dir:
        page.get_by_label("Category").select_option("")
        expect(rows).to_have_count(3)
        page.screenshot(path=screenshot_dir / "shell-catalog.png", full_page=True)

    # The admin (staff marketer) and the API docs are one click away.
    page.get_by_role("link", name="Admin", exact=True).click()
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()
    page.goto(f"{base}/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Marketing platform API")

    assert page.console_errors == []

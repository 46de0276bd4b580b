"""Building a rule segment in Chromium: a profile condition and a nested OR group of a
profile and a behavioural condition, the count following each change, an invalid count
shown next to its condition, then saving."""

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from profiles.models import Segment
from tests.profiles.factories import CustomerFactory, EventFactory
from tests.recommender.factories import ItemFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_build_a_nested_segment_and_save_it(marketer_page, live_server, screenshot_dir):
    ItemFactory(external_id="shoe-1", category="Shoes")
    ItemFactory(external_id="bag-1", category="Bags")
    CustomerFactory(external_id="ann", country="DE")
    bob = CustomerFactory(external_id="bob", country="FR")
    cy = CustomerFactory(external_id="cy", country="AT")
    EventFactory(customer=cy, type="purchase", item_external_id="bag-1")
    for days in (2, 6):
        EventFactory(
            customer=bob,
            type="purchase",
            item_external_id="shoe-1",
            occurred_at=timezone.now() - dt.timedelta(days=days),
        )

    page = marketer_page
    page.goto(f"{live_server.url}/segments/")
    page.get_by_role("link", name="New segment").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New segment")
    count = page.locator("#segment-count")

    # Email contains "example.com", typed key by key (the keyup trigger).
    page.locator("#c-0\\.0-field").select_option("profile:email")
    expect(page.locator("#c-0\\.0-op")).to_have_value("eq")
    page.locator("#c-0\\.0-op").select_option("contains")
    expect(page.locator("#cond-0\\.0 .error")).to_have_text("email: give the text to look for.")
    page.locator("#c-0\\.0-value").press_sequentially("example.com")
    expect(count).to_have_text("3 customers")
    expect(page.locator("#segment-sample tbody tr")).to_have_count(3)

    # A nested group, combined with "or": country DE, or bought Shoes at least twice.
    page.locator("#group-0 > .seg-group-foot").get_by_role("button", name="+ group").click()
    expect(page.locator("#g-0\\.1-op")).to_have_value("or")
    page.locator("#c-0\\.1\\.0-field").select_option("profile:country")
    expect(page.locator("#c-0\\.1\\.0-value")).to_have_attribute("type", "text")
    page.locator("#c-0\\.1\\.0-value").fill("DE")
    page.locator("#c-0\\.1\\.0-value").press("Tab")
    expect(count).to_have_text("1 customer")
    page.locator("#group-0\\.1 > .seg-group-foot").get_by_role("button", name="+ condition").click()
    page.locator("#c-0\\.1\\.1-field").select_option("event")
    expect(page.locator("#c-0\\.1\\.1-event_type")).to_have_value("purchase")
    expect(count).to_have_text("3 customers")
    page.locator("#c-0\\.1\\.1-category").select_option("Shoes")
    expect(count).to_have_text("2 customers")

    # An invalid count: the message sits at that condition, the count disappears.
    page.locator("#c-0\\.1\\.1-value").fill("-2")
    page.locator("#c-0\\.1\\.1-value").press("Tab")
    expect(page.locator("#cond-0\\.1\\.1 .error")).to_have_text("The count cannot be negative.")
    expect(count).to_have_count(0)
    expect(page.locator("#c-0\\.1\\.1-value")).to_have_value("-2")
    if screenshot_dir:
        page.screenshot(path=screenshot_dir / "segment_builder_error.png", full_page=True)
    page.locator("#c-0\\.1\\.1-value").fill("2")
    page.locator("#c-0\\.1\\.1-value").press("Tab")
    expect(count).to_have_text("2 customers")
    expect(page.locator("#cond-0\\.1\\.1 .error")).to_have_count(0)
    if screenshot_dir:
        page.screenshot(path=screenshot_dir / "segment_builder.png", full_page=True)

    page.get_by_label("Name").fill("DE or shoe lovers")
    page.get_by_role("button", name="Save segment").click()
    page.wait_for_url(re.compile(r"/segments/\d+/$"))
    segment = Segment.objects.get(name="DE or shoe lovers")
    assert page.url == f"{live_server.url}/segments/{segment.pk}/"
    assert segment.rules == {
        "op": "and",
        "conditions": [
            {"kind": "profile", "field": "email", "op": "contains", "value": "example.com"},
            {
                "op": "or",
                "conditions": [
                    {"kind": "profile", "field": "country", "op": "eq", "value": "DE"},
                    {
                        "kind": "event",
                        "event_type": "purchase",
                        "aggregate": "count",
                        "op": "gte",
                        "value": 2,
                        "within_days": 30,
                        "category": "Shoes",
                    },
                ],
            },
        ],
    }
    assert page.console_errors == []

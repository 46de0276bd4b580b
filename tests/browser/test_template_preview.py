"""Editing a message template in Chromium: the preview follows the edits for a chosen
customer, a variable that customer lacks shows as an error, then the fixed template saves."""

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from campaigns.models import MessageTemplate
from recommender import serving
from tests.campaigns.factories import MessageTemplateFactory
from tests.profiles.factories import CustomerFactory
from tests.recommender.factories import ItemFactory, ModelVersionFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_edit_template_and_watch_the_preview(marketer_page, live_server, screenshot_dir):
    serving._local_drop()
    ItemFactory(external_id="i1", title="Blue boots", price=Decimal("59.00"))
    ModelVersionFactory(
        algorithm="popularity", is_active=True, artifact={"item_ids": ["i1"], "scores": [1.0]}
    )
    CustomerFactory(first_name="Grace", email="grace@example.com")
    CustomerFactory(first_name="Ada", email="ada@example.com")
    template = MessageTemplateFactory(
        name="Welcome", channel="email", subject="Hello", html_body="<p>Hi there</p>", body=""
    )

    page = marketer_page
    page.goto(f"{live_server.url}/campaigns/")
    page.get_by_role("link", name="Message templates").click()
    page.get_by_role("link", name="Welcome").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome")
    expect(page.locator("[data-field=url]")).to_be_hidden()  # push-only parts hidden

    page.get_by_label("Preview for customer").fill("ada@example.com")
    expect(page.locator("#preview-customer")).to_contain_text("Ada")
    page.get_by_label("Subject (email) / title (push, in-app)").fill(
        "{{ customer.first_name }}, try {{ recommendations.0.title }}"
    )
    expect(page.locator("#preview-subject")).to_have_text("Subject: Ada, try Blue boots")
    page.get_by_label("HTML body").fill(
        "<p>Only {{ recommendations.0.price|money }}</p>\n<p>{{ customer.nickname }}</p>"
    )
    expect(page.locator("#preview-render-error")).to_contain_text(
        "html, line 2: no variable 'nickname'"
    )
    page.get_by_label("HTML body").fill("<p>Only {{ recommendations.0.price|money }}</p>")
    frame = page.frame_locator("#preview-html")
    expect(frame.locator("p")).to_have_text("Only €59.00")
    expect(page.locator("#preview-text")).to_have_text("Only €59.00", use_inner_text=False)
    if screenshot_dir:
        page.screenshot(path=screenshot_dir / "template_preview.png", full_page=True)

    page.get_by_role("button", name="Save template").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Message templates")
    template.refresh_from_db()
    assert template.subject == "{{ customer.first_name }}, try {{ recommendations.0.title }}"
    assert template.html_body == "<p>Only {{ recommendations.0.price|money }}</p>"
    assert MessageTemplate.objects.count() == 1
    assert page.console_errors == [], page.console_errors

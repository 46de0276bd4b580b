"""A marketer in Chromium creates an email campaign for a segment, previews it for one
customer, sends it (a real Celery worker, the SendGrid stand-in over HTTP), watches the
progress finish and sees the sent count in the report."""

from collections import Counter

import pytest
from playwright.sync_api import expect

from campaigns.models import Campaign, Message
from profiles.segments.services import segment_create_static
from tests.campaigns import conftest as campaign_fixtures
from tests.campaigns.factories import MessageTemplateFactory, emailable_customer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The provider stand-ins are fixtures of tests/campaigns; this module uses SendGrid's.
_sendgrid_server = campaign_fixtures._sendgrid_server
sendgrid_stand_in = campaign_fixtures.sendgrid_stand_in


@pytest.fixture
def worker_sendgrid_env(request, monkeypatch):
    """The worker subprocess reads its provider settings from the environment."""
    stand_in = request.getfixturevalue("sendgrid_stand_in")
    for name, value in {
        "SENDGRID_API_KEY": "SG.test-key",
        "SENDGRID_API_HOST": stand_in.url,
        "SENDGRID_FROM_EMAIL": "news@shop.example",
        "CAMPAIGN_EMAIL_BACKEND": "sendgrid",
        "DISPATCH_BATCH_SIZE": "2",
    }.items():
        monkeypatch.setenv(name, value)
    return stand_in


def _audience(n: int) -> list:
    return [
        emailable_customer(
            external_id=f"shop-{i}", first_name=first, email=f"{first.lower()}@example.com"
        )
        for i, first in enumerate(["Grace", "Ada", "Edsger", "Barbara", "Alan"][:n])
    ]


def test_create_preview_send_and_report(
    worker_sendgrid_env, celery_worker_process, marketer_page, live_server, screenshot_dir
):
    customers = _audience(5)
    segment_create_static(
        name="Spring buyers", kind="imported", customer_ids=[c.pk for c in customers]
    )
    MessageTemplateFactory(
        name="Spring hello",
        channel="email",
        subject="{{ customer.first_name }}, spring is here",
        html_body="<p>Hello {{ customer.first_name }} from {{ campaign.name }}</p>",
        body="",
    )
    page = marketer_page
    page.on("dialog", lambda dialog: dialog.accept())

    page.goto(f"{live_server.url}/campaigns/")
    page.get_by_role("link", name="New campaign").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New campaign")
    page.get_by_label("Name").fill("Spring launch")
    page.get_by_label("Channel").select_option("email")
    page.get_by_role("button", name="Save campaign").click()  # no segment, no variant yet
    expect(page.locator("#segment-error")).to_have_text("Choose a segment.")
    expect(page.locator("#variant-errors")).to_have_text(
        "Add at least one variant with a template."
    )
    if screenshot_dir:
        page.screenshot(path=screenshot_dir / "campaign_form_errors.png", full_page=True)
    assert not Campaign.objects.exists()
    page.get_by_role("combobox", name="Segment").select_option(label="Spring buyers")
    page.locator("#id_variants-0-name").fill("A")
    page.locator("#id_variants-0-template").select_option(label="Spring hello (Email)")
    page.get_by_label("Holdout (% of the audience who get nothing, for lift)").fill("0")
    page.get_by_role("button", name="Save campaign").click()

    expect(page.get_by_role("heading", level=1)).to_contain_text("Spring launch")
    expect(page.locator("#campaign-status")).to_have_text("Draft")
    campaign = Campaign.objects.get(name="Spring launch")
    assert list(campaign.variants.values_list("name", "template__name")) == [("A", "Spring hello")]

    page.get_by_label("Preview for customer").fill("ada@example.com")
    expect(page.locator("#preview-customer")).to_contain_text("Ada")
    expect(page.locator(".preview-subject")).to_have_text("Subject: Ada, spring is here")
    frame = page.frame_locator(".preview-html")
    expect(frame.locator("p")).to_have_text("Hello Ada from Spring launch")
    if screenshot_dir:
        page.screenshot(path=screenshot_dir / "campaign_detail_preview.png", full_page=True)

    page.get_by_role("button", name="Send now").click()
    # The page reloads as sending, polls the progress every 2 s and reloads again when done.
    expect(page.locator("#campaign-status")).to_have_text("Done", timeout=60_000)
    expect(page.locator("#progress-sent")).to_have_text("5")
    expect(page.locator("#progress-queued")).to_have_text("0")

    page.get_by_role("link", name="Report").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Report: Spring launch")
    expect(page.locator("#total-sent")).to_have_text("5")
    expect(page.locator('#variant-report tr[data-variant="A"] td').nth(1)).to_have_text("5")
    expect(page.locator("#report-funnel .main-svg").first).to_be_visible()
    if screenshot_dir:
        page.screenshot(path=screenshot_dir / "campaign_report.png", full_page=True)

    sent = Counter(
        r.json()["personalizations"][0]["to"][0]["email"] for r in worker_sendgrid_env.requests
    )
    assert sent == Counter({c.email: 1 for c in customers})
    assert Message.objects.filter(campaign=campaign, status="sent").count() == 5
    assert page.console_errors == [], page.console_errors

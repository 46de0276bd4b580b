"""A marketer's whole day in Chromium, with a screenshot of every page saved: log in through
the form, build a rule segment in the builder, send an email campaign to it (a real Celery
worker, the SendGrid stand-in over HTTP), set up and start an experiment, read its results.

Screenshots go to $SCREENSHOT_DIR, else artifacts/screenshots/ (gitignored). The single
steps are tested in detail by test_segment_builder, test_campaign_flow and
test_experiments_browser; this test strings them together.
"""

import datetime as dt
import os
import re
from pathlib import Path

import pytest
from django.urls import get_resolver
from django.utils import timezone
from playwright.sync_api import expect

from campaigns.models import Campaign, Message
from experiments.models import Experiment, Exposure
from profiles.models import Customer, Event, Segment
from tests.browser import test_campaign_flow as campaign_flow
from tests.campaigns.factories import MessageTemplateFactory, emailable_customer

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# The SendGrid stand-in and the worker's provider settings of the campaign flow test.
_sendgrid_server = campaign_flow._sendgrid_server
sendgrid_stand_in = campaign_flow.sendgrid_stand_in
worker_sendgrid_env = campaign_flow.worker_sendgrid_env

ROOT = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def urls_loaded() -> None:
    """Import the URLconf (and with it every view and scipy) before the browser's first
    request: on a busy machine that takes longer than a page load may."""
    get_resolver().url_patterns  # noqa: B018


@pytest.fixture
def shots() -> Path:
    directory = Path(os.environ.get("SCREENSHOT_DIR") or ROOT / "artifacts" / "screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _outcomes(experiment: Experiment, buyers: dict[str, int]) -> None:
    at = timezone.now() - dt.timedelta(days=8)
    for variant in experiment.variants.order_by("pk"):
        customers = Customer.objects.bulk_create(
            Customer(external_id=f"e2e-{variant.key}-{i}") for i in range(200)
        )
        Exposure.objects.bulk_create(
            Exposure(experiment=experiment, customer=c, variant=variant, exposed_at=at,
                     propensity=0.5)
            for c in customers
        )  # fmt: skip
        Event.objects.bulk_create(
            Event(customer=c, type="purchase", occurred_at=at + dt.timedelta(days=2))
            for c in customers[: buyers[variant.key]]
        )


def test_log_in_segment_campaign_experiment_results(
    urls_loaded, worker_sendgrid_env, celery_worker_process, marketer_page, live_server, shots
):
    audience = [
        emailable_customer(external_id=f"e2e-{name}", first_name=name.title(),
                           email=f"{name}@example.com")
        for name in ("grace", "ada", "alan")
    ]  # fmt: skip
    emailable_customer(external_id="e2e-other", email="other@elsewhere.org")
    MessageTemplateFactory(
        name="Hello", channel="email", subject="Hi {{ customer.first_name }}", body="Hello"
    )
    saved: list[str] = []
    page = marketer_page
    page.on("dialog", lambda dialog: dialog.accept())

    def shot(name: str) -> None:
        page.screenshot(path=shots / f"{name}.png", full_page=True)
        saved.append(name)

    # Logged in through the login form (marketer_page): the dashboard.
    assert page.url == f"{live_server.url}/"
    shot("01_dashboard")

    # The segment builder: email contains "example.com".
    page.goto(f"{live_server.url}/segments/new/")
    page.locator("#c-0\\.0-field").select_option("profile:email")
    page.locator("#c-0\\.0-op").select_option("contains")
    page.locator("#c-0\\.0-value").press_sequentially("example.com")
    expect(page.locator("#segment-count")).to_have_text("3 customers")
    shot("02_segment_builder")
    page.get_by_label("Name").fill("Example customers")
    page.get_by_role("button", name="Save segment").click()
    page.wait_for_url(re.compile(r"/segments/\d+/$"))
    segment = Segment.objects.get(name="Example customers")
    shot("03_segment_detail")

    # A campaign to it, sent through the worker to the SendGrid stand-in.
    page.goto(f"{live_server.url}/campaigns/new/")
    page.get_by_label("Name").fill("E2E launch")
    page.get_by_label("Channel").select_option("email")
    page.get_by_role("combobox", name="Segment").select_option(label=segment.name)
    page.locator("#id_variants-0-name").fill("A")
    page.locator("#id_variants-0-template").select_option(label="Hello (Email)")
    page.get_by_label("Holdout (% of the audience who get nothing, for lift)").fill("0")
    shot("04_campaign_form")
    page.get_by_role("button", name="Save campaign").click()
    expect(page.locator("#campaign-status")).to_have_text("Draft")
    page.get_by_role("button", name="Send now").click()
    expect(page.locator("#campaign-status")).to_have_text("Done", timeout=60_000)
    expect(page.locator("#progress-sent")).to_have_text("3")
    shot("05_campaign_sent")
    page.get_by_role("link", name="Report").click()
    expect(page.locator("#total-sent")).to_have_text("3")
    shot("06_campaign_report")
    campaign = Campaign.objects.get(name="E2E launch")
    assert Message.objects.filter(campaign=campaign, status="sent").count() == 3
    sent = {r.json()["personalizations"][0]["to"][0]["email"] for r in worker_sendgrid_env.requests}
    assert sent == {c.email for c in audience}

    # An experiment: defined with the form, started, its results read.
    page.goto(f"{live_server.url}/experiments/new/")
    page.get_by_label("Key").fill("e2e-hero")
    page.get_by_label("Hypothesis").fill("A red hero sells more")
    page.locator("#id_variants-1-key").fill("red")
    shot("07_experiment_form")
    page.get_by_role("button", name="Save experiment").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("e2e-hero")
    page.get_by_role("button", name="Start").click()
    expect(page.locator("#stop-experiment")).to_be_visible()
    experiment = Experiment.objects.get(key="e2e-hero")
    assert experiment.status == "running"
    _outcomes(experiment, {"control": 10, "red": 30})
    page.goto(f"{live_server.url}/experiments/e2e-hero/?fresh=1")
    expect(page.locator("#cumulative-chart .main-svg").first).to_be_visible()
    expect(page.locator("#results-table tr[data-variant=red]")).to_contain_text("15.0 %")
    shot("08_experiment_results")

    for name in saved:
        data = (shots / f"{name}.png").read_bytes()
        assert data.startswith(PNG_MAGIC), name
        assert len(data) > 5_000, name
    assert len(saved) == 8
    assert page.console_errors == [], page.console_errors

"""Experiments in Chromium: a marketer defines an A/B/n test with the form (a variant added
in the page), starts it, and runs a campaign as a bandit from its page; the results page
draws its charts once exposures and outcomes are in."""

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from campaigns.models import CampaignVariant
from experiments.models import Experiment, Exposure
from profiles.models import Customer, Event
from tests.campaigns.factories import CampaignFactory, MessageTemplateFactory

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _outcomes(experiment, buyers_by_variant):
    at = timezone.now() - dt.timedelta(days=8)
    for variant in experiment.variants.order_by("pk"):
        customers = Customer.objects.bulk_create(
            Customer(external_id=f"{variant.key}-{i}", email=f"{variant.key}{i}@x.com")
            for i in range(300)
        )
        Exposure.objects.bulk_create(
            Exposure(experiment=experiment, customer=c, variant=variant,
                     exposed_at=at + dt.timedelta(days=i % 4), propensity=0.5)
            for i, c in enumerate(customers)
        )  # fmt: skip
        Event.objects.bulk_create(
            Event(customer=c, type="purchase", occurred_at=at + dt.timedelta(days=5))
            for c in customers[: buyers_by_variant[variant.key]]
        )


def test_define_start_and_read_an_ab_test(marketer_page, live_server):
    page = marketer_page
    page.goto(f"{live_server.url}/experiments/")
    page.get_by_role("link", name="New experiment").click()
    page.get_by_label("Key").fill("hero")
    page.get_by_label("Hypothesis").fill("A red hero sells more")
    page.get_by_role("button", name="Add variant").click()
    page.locator("#id_variants-2-key").fill("blue")
    page.locator("#id_variants-1-key").fill("red")
    page.locator("input[name=guardrail_events][value=unsubscribe]").check()
    page.get_by_role("button", name="Save experiment").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("hero")
    expect(page.locator("#decision")).to_contain_text("Keep running")

    page.get_by_role("button", name="Start").click()
    expect(page.locator("#stop-experiment")).to_be_visible()
    experiment = Experiment.objects.get(key="hero")
    assert experiment.status == "running"
    assert list(experiment.variants.values_list("key", flat=True)) == ["control", "red", "blue"]
    _outcomes(experiment, {"control": 15, "red": 30, "blue": 16})
    page.goto(f"{live_server.url}/experiments/hero/?fresh=1")
    expect(page.locator("#cumulative-chart .main-svg").first).to_be_visible()
    expect(page.locator("#lift-chart .main-svg").first).to_be_visible()
    expect(page.locator("#results-table tr[data-variant=red]")).to_contain_text("10.0 %")
    expect(page.locator("#guardrails")).to_contain_text("unsubscribe")
    assert page.console_errors == []


def test_run_a_campaign_as_a_bandit_from_its_page(marketer_page, live_server):
    campaign = CampaignFactory(name="Winter sale", goal_event_type="purchase")
    for name in ("A", "B"):
        CampaignVariant.objects.create(
            campaign=campaign, name=name, template=MessageTemplateFactory()
        )
    page = marketer_page
    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/")
    page.get_by_label("Run as experiment").select_option("thompson")
    page.get_by_role("button", name="Run as experiment").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Campaign: Winter sale")
    expect(page.locator("body")).to_contain_text("Thompson sampling bandit")
    experiment = Experiment.objects.get(campaign=campaign)
    assert (experiment.status, experiment.allocation) == ("running", "thompson")
    page.get_by_role("link", name="Winter sale").click()
    expect(page.locator("#experiment-results")).to_be_visible()
